"""Test-wide setup: a persistent JAX compilation cache so repeated jit compiles are cheap."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402

_CACHE_DIR = Path(os.environ.get("AMPKIT_JAX_CACHE", Path.home() / ".cache" / "ampkit" / "jax"))
_CACHE_DIR.mkdir(parents=True, exist_ok=True)
jax.config.update("jax_compilation_cache_dir", str(_CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

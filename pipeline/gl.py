"""Choosing a headless OpenGL backend for MuJoCo before mujoco is imported.

This module imports neither mujoco nor any ampkit package that does: call
:func:`select_gl_backend` before the first `import mujoco` of the process.
"""

from __future__ import annotations

import os
import subprocess
import sys

BACKENDS = ("egl", "osmesa")
_PROBE = ("import mujoco; "
          "mujoco.Renderer(mujoco.MjModel.from_xml_string('<mujoco/>'), 8, 8).render()")


class NoGLBackendError(RuntimeError):
    """No offscreen OpenGL backend works on this machine."""


def select_gl_backend() -> str:
    """Set ``MUJOCO_GL`` to a working offscreen backend and return it.

    A value the user already set is respected. Otherwise EGL is tried, then OSMesa, each in a
    subprocess (MuJoCo fixes its GL backend at import, so a failed try cannot be undone here).

    Raises:
        NoGLBackendError: neither works; the message says what to install.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    errors = []
    for backend in BACKENDS:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                               env={**os.environ, "MUJOCO_GL": backend}, timeout=120)
        if probe.returncode == 0:
            os.environ["MUJOCO_GL"] = backend
            return backend
        errors.append(f"{backend}: {probe.stderr.strip().splitlines()[-1:] or ['failed']}")
    raise NoGLBackendError(
        "no offscreen OpenGL backend works (" + "; ".join(errors) + "). Install EGL (Debian: "
        "libegl1 libgl1-mesa-dri) or OSMesa (libosmesa6), or set MUJOCO_GL yourself.")

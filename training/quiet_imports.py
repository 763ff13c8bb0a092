"""Import MuJoCo MJX without its "Failed to import warp" lines on stdout.

``mujoco.mjx.warp`` (mujoco-mjx 3.x) tries the optional NVIDIA Warp backend when it is imported
and, when warp is not installed, *prints* (not warns) two lines to stdout::

    Failed to import warp: No module named 'warp'
    Failed to import mujoco_warp: No module named 'warp'

ampkit never uses that backend (every MJX call runs the JAX implementation), so for us the
lines are noise that reads like an error, and on stdout they end up in a user's pipe. The
finder below wraps the loading of exactly that module: what it prints is captured, exactly the
"warp is not installed" lines are dropped, and anything else it printed goes on to stderr (so a
warp that is installed but broken still shows). Python warnings and logging are untouched; they
never went through stdout. ``training/__init__.py`` installs it, so every ``training.*``
entry point imports MJX quietly; nothing is imported until MJX itself is.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import io
import re
import sys
from collections.abc import Sequence
from types import ModuleType

WARP_MODULE = "mujoco.mjx.warp"
"""The module whose import prints the messages."""

MISSING_WARP = re.compile(
    r"Failed to import (?:warp|mujoco_warp): No module named 'warp(?:\.[\w.]+)?'")
"""A line saying only that the optional warp package is absent (matched whole)."""


class _FilteringLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` with stdout captured and filtered."""

    def __init__(self, inner: importlib.abc.Loader, drop: re.Pattern[str]) -> None:
        self._inner = inner
        self._drop = drop

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        captured = io.StringIO()
        try:
            # redirect_stdout swaps sys.stdout for the whole process; the import holds the
            # module lock and runs for well under a second, so nothing else is caught in it.
            with contextlib.redirect_stdout(captured):
                self._inner.exec_module(module)
        finally:
            forward_unmatched(captured.getvalue(), self._drop)

    def __getattr__(self, name: str) -> object:
        # get_resource_reader, is_package, get_code ... stay the real loader's.
        return getattr(self._inner, name)


class QuietImportFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that gives one named module a stdout-filtering loader.

    Args:
        module: Full dotted name of the module to load quietly.
        drop: Lines (matched whole, without the newline) that are discarded.
    """

    def __init__(self, module: str, drop: re.Pattern[str]) -> None:
        self.module = module
        self.drop = drop

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        for finder in sys.meta_path:  # the finder that would have found it without us
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _FilteringLoader(spec.loader, self.drop)
                return spec
        return None


def forward_unmatched(text: str, drop: re.Pattern[str]) -> None:
    """Write the lines of ``text`` that ``drop`` does not match whole to stderr."""
    kept = [line for line in text.splitlines(keepends=True)
            if not drop.fullmatch(line.rstrip("\r\n"))]
    if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


def install_quiet_import(module: str = WARP_MODULE, drop: re.Pattern[str] = MISSING_WARP) -> bool:
    """Make the first import of ``module`` drop the lines matching ``drop`` from stdout.

    Returns:
        True when a finder was installed; False when ``module`` is already imported (too late
        to filter) or a finder for it is already in place.
    """
    if module in sys.modules:
        return False
    if any(isinstance(f, QuietImportFinder) and f.module == module for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, QuietImportFinder(module, drop))
    return True

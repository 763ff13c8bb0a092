"""Exception hierarchy shared by every ampkit package (robots is the lowest layer).

Every class here pickles (``__reduce__``), so an error raised in a worker process arrives
whole in the parent; an exception that fails to unpickle would leave ``multiprocessing``
waiting forever.
"""

from __future__ import annotations

import errno as errno_codes
import os
import sys
from collections.abc import Callable
from pathlib import Path


class AmpkitError(Exception):
    """Base class of every error ampkit raises on purpose."""


class UnknownRobotError(AmpkitError, ValueError):
    """A robot name that has no folder under ``robots/``."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown robot {name!r}; known robots: {', '.join(known) or 'none'}")

    def __reduce__(self) -> tuple[type, tuple[str, list[str]]]:
        return type(self), (self.name, self.known)


class InputFileError(AmpkitError, ValueError):
    """A file that cannot be used, with the file and the problem named."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        return type(self), (self.path, self.problem)


class MotionFileError(InputFileError):
    """A robot-motion file (DESIGN 4.3) that is unreadable or breaks the schema."""


STORAGE_ERRNOS = frozenset({errno_codes.ENOSPC, errno_codes.EDQUOT, errno_codes.EROFS,
                            errno_codes.EACCES, errno_codes.EPERM, errno_codes.EFBIG,
                            errno_codes.EIO})
"""OS errors that mean "this location cannot take the write", not "this input is bad"."""

_CAUSES = {
    errno_codes.ENOSPC: "no space left on the device",
    errno_codes.EDQUOT: "disk quota exceeded",
    errno_codes.EROFS: "the file system is read-only",
    errno_codes.EACCES: "permission denied",
    errno_codes.EPERM: "operation not permitted",
    errno_codes.EFBIG: "file too large for the file system",
    errno_codes.EIO: "input/output error on the device",
}


class StorageError(AmpkitError, RuntimeError):
    """An output that could not be written (full disk, read-only or forbidden location).

    Attributes:
        path: The output that was being written (its final name, not a temporary).
        errno: The OS error number (``errno.ENOSPC`` …), or None when not from the OS.
        cause: Human-readable cause.
    """

    def __init__(self, path: str | Path, cause: str, errno: int | None = None) -> None:
        self.path = Path(path)
        self.cause = cause
        self.errno = errno
        super().__init__(f"{self.path}: cannot write: {cause}")

    @classmethod
    def from_os_error(cls, path: str | Path, exc: OSError) -> StorageError:
        """The error for ``exc`` (an OSError) raised while writing ``path``."""
        code = exc.errno
        cause = _CAUSES.get(code) if code is not None else None
        if cause is None:
            cause = os.strerror(code) if code else str(exc)
        return cls(path, f"{cause} ({errno_codes.errorcode.get(code, code)})", code)

    def __reduce__(self) -> tuple[type, tuple[Path, str, int | None]]:
        return type(self), (self.path, self.cause, self.errno)


class OutputLockedError(AmpkitError, RuntimeError):
    """Another run is writing the same output; the message names that run."""

    def __init__(self, path: str | Path, holder: str) -> None:
        self.path = Path(path)
        self.holder = holder
        super().__init__(f"{self.path}: in use by another run ({holder}); wait for it to "
                         f"finish or stop it, then run again")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        return type(self), (self.path, self.holder)


def run_main(main: Callable[[], int], prog: str) -> int:
    """Run a command-line ``main`` so that every fault ampkit can name ends in one line.

    For the ``if __name__ == "__main__"`` block of a stage: an :class:`AmpkitError` that the
    stage did not handle itself, and an OS error meaning "cannot write here" (full disk,
    read-only, forbidden) are printed as ``<prog>: <message>`` with exit status 2, never as a
    traceback; Ctrl-C exits with 130.
    """
    try:
        return main()
    except AmpkitError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        target = exc.filename or "output"
        print(f"{prog}: {StorageError.from_os_error(target, exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130

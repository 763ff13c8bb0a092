"""The storage layer every stage writes through: atomic, synced, and clear about failures.

- :func:`atomic_path` yields a temporary path beside the output and renames it into place
  only after the content is complete and (by default) fsynced, so a crash never leaves a half
  file under the final name. On any failure the temporary is removed.
- A full disk, a read-only file system or a forbidden directory (``ENOSPC``, ``EROFS``,
  ``EACCES`` …) becomes one :class:`robots.errors.StorageError` naming the output and the
  cause, wherever in the write it happened.
- Temporaries carry the writer's process id (``.<name>.<pid>.<random>.tmp``), so
  :func:`remove_stale_temps` can delete those of killed runs at the start of a stage without
  touching a live writer's.
- :func:`check_writable` probes output locations before a stage does any work, so a read-only
  destination fails the stage up front instead of after half of its outputs.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from robots.errors import STORAGE_ERRNOS, StorageError

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_LEGACY_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # before pids were recorded
_TEMP_DIR_NAME = re.compile(r"^\.(tmp|old)-.+-(?P<pid>\d+)$")  # checkpoint directories


@contextlib.contextmanager
def storage_errors(path: str | Path) -> Iterator[None]:
    """Turn an OSError meaning "cannot write here" into a StorageError naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise StorageError.from_os_error(path, exc) from exc
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary lives in the same directory, so the final ``os.replace`` is atomic on POSIX.
    With ``fsync`` the file's bytes reach the disk before the rename (and the rename before
    returning), so a power cut leaves the old file or the new one, never an empty one.

    Raises:
        StorageError: the directory cannot be created or written (full, read-only,
            forbidden), from the body of the ``with`` block too; ``path`` is left untouched.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.",
                                        suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
            try:
                yield tmp
            except StorageError as exc:
                if exc.path != tmp:
                    raise
                raise StorageError(path, exc.cause, exc.errno) from exc  # the real name
            if fsync:
                _fsync_file(tmp)
            os.replace(tmp, path)
            if fsync:
                fsync_directory(path.parent)
        finally:
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: str | Path) -> None:
    """Make a rename inside ``directory`` durable (best effort: not every fs allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EIO):
            raise
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` (not atomic by itself), raising StorageError on a full disk.

    Plain ``os.write`` calls, so a full disk is an ordinary ``ENOSPC`` at the failing call
    (never a crash inside a C library) and a short write is continued, not lost.
    """
    view = memoryview(data).cast("B")
    with storage_errors(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        write_bytes(tmp, data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode())


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_text(obj: object) -> str:
    """The canonical JSON text ampkit writes (indented, sorted keys, trailing newline)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def write_json_atomic(path: str | Path, obj: object) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json_text(obj))


def _json_default(obj: object) -> object:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


# --- stale temporaries --------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_stale_temp(path: Path) -> bool:
    """Whether ``path`` is a temporary of an atomic write whose writer is gone."""
    match = _TEMP_NAME.match(path.name) or _TEMP_DIR_NAME.match(path.name)
    if match is not None:
        return not _pid_alive(int(match.group("pid")))
    return _LEGACY_TEMP_NAME.match(path.name) is not None


def remove_stale_temps(directory: str | Path, recursive: bool = True,
                       prefix: str = ".") -> list[Path]:
    """Delete temporaries (files and checkpoint directories) left in ``directory`` by killed runs.

    Only names this layer makes are touched, and only when their writer's process is gone.
    Call it at the start of a stage, before hashing or listing the directory. ``prefix``
    narrows it to names starting so (``.merged.h5.`` for one file's temporaries).

    Returns:
        The removed paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    pattern = f"{glob.escape(prefix)}*"
    candidates = directory.rglob(pattern) if recursive else directory.glob(pattern)
    for path in sorted(candidates):
        if not is_stale_temp(path):
            continue
        with storage_errors(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        removed.append(path)
    return removed


# --- up-front checks ----------------------------------------------------------------------------

def check_writable(files: Iterable[str | Path] = (),
                   directories: Iterable[str | Path] = ()) -> None:
    """Make sure each output file's directory, and each output directory, takes a new file.

    Missing directories are created (that is the first thing a stage would do anyway).

    Raises:
        StorageError: naming the first output whose location cannot be written.
    """
    locations = [(Path(d), Path(d)) for d in directories]
    locations += [(Path(f), Path(f).parent) for f in files]
    for output, directory in locations:
        with storage_errors(output):
            directory.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=f".probe.{os.getpid()}.", suffix=TEMP_SUFFIX,
                                         dir=directory)
            os.close(fd)
            os.unlink(probe)

"""An exclusive lock on an output (a directory or a file), so two runs never write one place.

The lock is an ``flock`` on a small file: ``<dir>/.ampkit.lock`` for a directory output,
``.<name>.lock`` beside a file output. The kernel drops an ``flock`` when its process dies, so a
killed run never leaves the output locked; the file itself records who holds it (pid, command,
start time) for the other run's error message, and is removed on release. The file names are
in ``.dvcignore``, so DVC never hashes a lock file into an output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from robots.errors import OutputLockedError
from robots.io import check_writable, remove_stale_temps, storage_errors

DIRECTORY_LOCK_NAME = ".ampkit.lock"


def lock_path(output: str | Path, is_directory: bool) -> Path:
    """Where the lock of ``output`` lives."""
    output = Path(output)
    if is_directory:
        return output / DIRECTORY_LOCK_NAME
    return output.with_name(f".{output.name}.lock")


def _holder_text(lock_file: Path) -> str:
    try:
        record = json.loads(lock_file.read_text() or "{}")
    except (OSError, ValueError):
        return "a process that has not yet recorded itself"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.get("started", 0)))
    return f"pid {record.get('pid', '?')}: {record.get('command', '?')}, started {started}"


@contextlib.contextmanager
def output_lock(output: str | Path, is_directory: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock of ``output`` for the ``with`` block; fail fast if taken.

    Args:
        output: The directory or file the caller is about to write.
        is_directory: Whether ``output`` is a directory (created if missing).
    Raises:
        OutputLockedError: another live run holds the lock; the message names it.
        StorageError: the lock file cannot be created (read-only or full location).
    Yields:
        The lock file path.
    """
    output = Path(output)
    path = lock_path(output, is_directory)
    while True:
        with storage_errors(output):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(output, _holder_text(path)) from None
        # The previous holder may have removed the file between our open and our lock: then
        # we hold a lock on a deleted inode, which protects nothing. Try again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        record = {"pid": os.getpid(), "command": " ".join(sys.argv) or sys.executable,
                  "started": time.time()}
        with storage_errors(output):  # a full disk fails the stage here, before any work
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(record).encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: nobody else can have it open and locked
        os.close(fd)


@contextlib.contextmanager
def stage_outputs(directories: tuple[str | Path, ...] = (), files: tuple[str | Path, ...] = (),
                  also_written: tuple[str | Path, ...] = ()) -> Iterator[list[Path]]:
    """Everything a stage does before writing: probe, lock, clean up after killed runs.

    Checks that every output location takes a new file (a read-only or forbidden place fails
    here, before any work), takes the lock of each output directory and file, and removes the
    temporaries that killed runs left for them.

    Args:
        directories: Output directories (locked).
        files: Output files (locked, with a lock file beside them).
        also_written: Files written too but not locked (metrics files in a git-tracked folder,
            where a lock file left by a killed run would show up).
    Raises:
        StorageError, OutputLockedError: see :func:`robots.io.check_writable`, :func:`output_lock`.
    Yields:
        The stale temporaries that were removed.
    """
    check_writable(files=(*files, *also_written), directories=directories)
    removed: list[Path] = []
    with contextlib.ExitStack() as stack:
        for directory in directories:
            stack.enter_context(output_lock(directory, is_directory=True))
        for file in files:
            stack.enter_context(output_lock(file, is_directory=False))
        for directory in directories:
            removed += remove_stale_temps(directory)
        for file in (*files, *also_written):
            removed += remove_stale_temps(Path(file).parent, recursive=False,
                                          prefix=f".{Path(file).name}.")
        yield removed

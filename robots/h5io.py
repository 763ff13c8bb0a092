"""Lean HDF5 writing and reading for the many small per-clip files.

h5py's high-level API costs tens of microseconds of Python per object (an attribute write
deletes-and-recreates, every ``File.attrs`` looks the root group up again), which dominates
converting and merging short clips. These helpers make the same HDF5 objects through h5py's
low-level API: files stay ordinary HDF5 that ``h5py.File`` reads back (strings as UTF-8
variable-length scalars, numbers as 64-bit scalars), with no timestamps, so equal content gives
equal bytes.

Writing never lets HDF5 touch the disk: the file is built in memory (HDF5's ``core`` driver,
no backing store) and its image is written with plain ``os.write`` calls
(:func:`robots.io.write_bytes`). HDF5 itself crashes (SIGSEGV while closing the file) when the
disk fills during its own writes; this way a full disk is an ordinary ``ENOSPC`` that becomes a
:class:`robots.errors.StorageError`. The image is byte-identical to what HDF5 writes to disk.
Files above :data:`MEMORY_IMAGE_LIMIT` bytes are written by HDF5 directly after checking that
the free space covers them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import h5py
import numpy as np

from robots.errors import StorageError
from robots.io import storage_errors, write_bytes

AttrValue = str | int | float
_STRING = h5py.string_dtype("utf-8")


MEMORY_IMAGE_LIMIT = 1 << 30
"""Estimated file size [bytes] up to which a file is built in memory (the image is copied
once, so peak memory is about twice this)."""
_FREE_SPACE_MARGIN = 1.1  # HDF5 metadata on top of the raw array bytes, generously
_CORE_BLOCK = 1 << 20


def write_file(path: str | Path, datasets: dict[str, np.ndarray | tuple[str, ...]],
               attrs: dict[str, AttrValue]) -> None:
    """Create (or truncate) ``path`` holding ``datasets`` and root ``attrs``, in that order.

    Datasets are numeric arrays, or sequences of str (stored as UTF-8 variable-length strings).

    Not atomic by itself: write to a temporary path (:func:`robots.io.atomic_path`).

    Raises:
        StorageError: the disk is full, read-only or the location is forbidden.
    """
    stored = {name: _as_storable(array) for name, array in datasets.items()}
    size = sum(array.nbytes for array in stored.values())
    if size <= MEMORY_IMAGE_LIMIT:
        write_bytes(path, file_image(stored, attrs))
        return
    _check_free_space(Path(path), int(size * _FREE_SPACE_MARGIN) + _CORE_BLOCK)
    with storage_errors(path):
        fid = h5py.h5f.create(os.fsencode(path), h5py.h5f.ACC_TRUNC, fcpl=_file_creation())
        try:
            _fill(fid, stored, attrs)
        finally:
            fid.close()


def file_image(datasets: dict[str, np.ndarray | tuple[str, ...]],
               attrs: dict[str, AttrValue]) -> bytes:
    """The bytes of the HDF5 file :func:`write_file` writes, built in memory."""
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_fapl_core(block_size=_CORE_BLOCK, backing_store=False)
    # The core driver without a backing store never creates this name on disk.
    fid = h5py.h5f.create(b"ampkit-in-memory.h5", h5py.h5f.ACC_TRUNC, fcpl=_file_creation(),
                          fapl=access)
    try:
        _fill(fid, {name: _as_storable(a) for name, a in datasets.items()}, attrs)
        h5py.h5f.flush(fid)
        return fid.get_file_image()
    finally:
        fid.close()


def _file_creation() -> h5py.h5p.PropFCID:
    file_creation = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    file_creation.set_obj_track_times(False)  # the root group would carry timestamps too
    return file_creation


def _fill(fid: h5py.h5f.FileID, datasets: dict[str, np.ndarray],
          attrs: dict[str, AttrValue]) -> None:
    creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    creation.set_obj_track_times(False)  # no timestamps: byte-deterministic files
    for name, array in datasets.items():
        space = h5py.h5s.create_simple(array.shape)
        file_type = h5py.h5t.py_create(array.dtype, logical=True)
        memory_type = h5py.h5t.py_create(array.dtype)
        dataset = h5py.h5d.create(fid, name.encode(), file_type, space, dcpl=creation)
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, array, mtype=memory_type)
        dataset.close()
    for name, value in attrs.items():
        _write_attr(fid, name, value)


def _check_free_space(path: Path, needed: int) -> None:
    """Refuse a direct HDF5 write that would not fit (HDF5 crashes on a full disk)."""
    with storage_errors(path):
        stats = os.statvfs(path.parent)
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise StorageError(path, f"no space left on the device: {needed / 2**20:.0f} MiB "
                                 f"needed, {free / 2**20:.0f} MiB free (ENOSPC)", errno.ENOSPC)


def _as_storable(array: np.ndarray | list[str] | tuple[str, ...]) -> np.ndarray:
    """Contiguous numeric array, or UTF-8 variable-length strings for str sequences."""
    if isinstance(array, list | tuple) or np.asarray(array).dtype.kind in "OU":
        return np.array([str(s) for s in array], dtype=_STRING)
    return np.ascontiguousarray(array)


def _write_attr(fid: h5py.h5f.FileID, name: str, value: AttrValue) -> None:
    if isinstance(value, str):
        data = np.array(value, dtype=_STRING)
    elif isinstance(value, bool | int | np.integer):
        data = np.array(int(value), dtype=np.int64)
    else:
        data = np.array(float(value), dtype=np.float64)
    file_type = h5py.h5t.py_create(data.dtype, logical=True)
    memory_type = h5py.h5t.py_create(data.dtype)
    attr = h5py.h5a.create(fid, name.encode(), file_type, h5py.h5s.create(h5py.h5s.SCALAR))
    try:
        attr.write(data, mtype=memory_type)
    finally:
        attr.close()


def open_error_text(exc: BaseException) -> str:
    """A one-line reason for an HDF5 open failure (HDF5's own text spans lines)."""
    code = getattr(exc, "errno", None)
    if code:
        return os.strerror(code)
    text = " ".join(str(exc).split())
    # HDF5: "Unable to synchronously open file (truncated file: eof = 96, ...)"
    reason = text.partition("(")[2].split(":")[0].split(",")[0].rstrip(") ")
    return f"not a readable HDF5 file ({reason})" if reason else text


class LeanReader:
    """Read root attributes and whole datasets of an HDF5 file with few Python calls.

    Use as a context manager; raises ``OSError`` when the file cannot be opened as HDF5 and
    ``KeyError`` naming a missing attribute or dataset.
    """

    def __init__(self, path: str | Path) -> None:
        self._fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY)

    def __enter__(self) -> LeanReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fid.close()

    def has_attr(self, name: str) -> bool:
        return bool(h5py.h5a.exists(self._fid, name.encode()))

    def attr(self, name: str) -> AttrValue:
        """A scalar root attribute (strings decoded)."""
        if not self.has_attr(name):
            raise KeyError(name)
        attr = h5py.h5a.open(self._fid, name.encode())
        try:
            if attr.shape != ():  # reading it into a scalar would overrun the buffer
                raise ValueError(f"attribute {name!r} has shape {attr.shape}, expected a "
                                 "single value")
            data = np.empty((), dtype=attr.dtype)
            attr.read(data)
        finally:
            attr.close()
        value = data[()]
        if isinstance(value, bytes):
            return value.decode()
        return value.item() if isinstance(value, np.generic) else value

    def dataset(self, name: str) -> np.ndarray:
        """A whole root dataset as a numpy array of its stored type."""
        try:
            dataset = h5py.h5d.open(self._fid, name.encode())
        except KeyError:
            raise KeyError(name) from None
        try:
            out = np.empty(dataset.shape, dtype=dataset.dtype)
            dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
        finally:
            dataset.close()
        return out

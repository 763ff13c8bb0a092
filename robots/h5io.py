"""Lean HDF5 writing and reading for the many small per-clip files.

h5py's high-level API costs tens of microseconds of Python per object (an attribute write
deletes-and-recreates, every ``File.attrs`` looks the root group up again), which dominates
converting and merging short clips. These helpers make the same HDF5 objects through h5py's
low-level API: files stay ordinary HDF5 that ``h5py.File`` reads back (strings as UTF-8
variable-length scalars, numbers as 64-bit scalars), with no timestamps, so equal content gives
equal bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

AttrValue = str | int | float
_STRING = h5py.string_dtype("utf-8")


def write_file(path: str | Path, datasets: dict[str, np.ndarray | tuple[str, ...]],
               attrs: dict[str, AttrValue]) -> None:
    """Create (or truncate) ``path`` holding ``datasets`` and root ``attrs``, in that order.

    Datasets are numeric arrays, or sequences of str (stored as UTF-8 variable-length strings).

    Not atomic by itself: write to a temporary path (:func:`robots.io.atomic_path`).
    """
    file_creation = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    file_creation.set_obj_track_times(False)  # the root group would carry timestamps too
    fid = h5py.h5f.create(os.fsencode(path), h5py.h5f.ACC_TRUNC, fcpl=file_creation)
    try:
        creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        creation.set_obj_track_times(False)  # no timestamps: byte-deterministic files
        for name, array in datasets.items():
            array = _as_storable(array)
            space = h5py.h5s.create_simple(array.shape)
            file_type = h5py.h5t.py_create(array.dtype, logical=True)
            memory_type = h5py.h5t.py_create(array.dtype)
            dataset = h5py.h5d.create(fid, name.encode(), file_type, space, dcpl=creation)
            dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, array, mtype=memory_type)
            dataset.close()
        for name, value in attrs.items():
            _write_attr(fid, name, value)
    finally:
        fid.close()


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

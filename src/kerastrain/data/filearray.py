"""Arrays left in their files (`stream: true`): rows read with explicit reads when indexed.

A `FileArray` is the rows of one column stored uncompressed, in C order, in one or more
files (an NPY file, an uncompressed member of an NPZ archive, shards of them, the NPY
cache of a Parquet or CSV file). Indexing it (`a[rows]`, `a[start:stop]`, `a[i]`) reads
those rows into a fresh NumPy array: the positions are sorted, runs of consecutive rows
are read at once (`os.preadv` straight into the result), and the result is put back in
the order asked. Unlike a memory map, whose touched pages count in the process's resident
memory until it is unmapped, the file's pages stay in the operating system's page cache
and out of the process: its memory does not grow with the rows read.

Whole-column work (statistics, checks, the fingerprint, the leakage hashes) goes through
`blocks()`, a few MiB at a time. `np.asarray(a)` reads the whole column: only small
columns (targets, one number per row) are ever read that way.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain.errors import DataError

BLOCK_BYTES = 4 << 20      # rows per block of a whole-column pass: about 4 MiB
IOV_MAX = 1024             # buffers one preadv fills at most (Linux's IOV_MAX)
_fds: dict[str, int] = {}  # one read-only descriptor per file, shared by every array


@dataclass(frozen=True)
class Segment:
    """Rows `start` .. `start + rows` of a `FileArray`, at byte `offset` of `path`."""

    path: str
    offset: int
    rows: int


class FileArray:
    """A read-only array whose rows are read from files when indexed."""

    def __init__(self, segments: list[Segment], dtype: np.dtype, row_shape: tuple[int, ...]):
        self.segments, self.dtype, self.row_shape = segments, np.dtype(dtype), tuple(row_shape)
        self.starts = np.cumsum([0] + [s.rows for s in segments], dtype=np.int64)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.starts[-1]), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * self.row_bytes

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __repr__(self) -> str:
        files = sorted({s.path for s in self.segments})
        return f"FileArray({self.shape}, {self.dtype}, {', '.join(files)})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.read(np.arange(len(self), dtype=np.int64))
        return whole if dtype is None else whole.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):  # rows first, then within the rows read
            return self[key[0]][(slice(None), *key[1:])] if len(key) > 1 else self[key[0]]
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} of {len(self)}")
            return self.read(np.array([index]))[0]
        if isinstance(key, slice):
            return self.read(np.arange(*key.indices(len(self)), dtype=np.int64))
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return self.read(rows.astype(np.int64, copy=False))

    def block_rows(self) -> int:
        return max(1, BLOCK_BYTES // max(1, self.row_bytes))

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(start, rows start .. start + len) over the whole column, a few MiB each."""
        step = self.block_rows()
        for start in range(0, len(self), step):
            yield start, self[start:start + step]

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The rows at the positions `rows` (a 1-D integer array), in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"row index out of range for {len(self)} rows")
        if bool(np.all(rows[1:] >= rows[:-1])):
            self._read_sorted(rows, None, out)
        else:
            order = np.argsort(rows, kind="stable")
            self._read_sorted(rows[order], order, out)
        return out

    def _read_sorted(self, rows: np.ndarray, order: np.ndarray | None, out: np.ndarray) -> None:
        """Read ascending `rows` into `out` (row k into out[order[k]] where `order` is
        given), one read per run of consecutive rows within one segment (a repeated row is
        read again); a run's rows are scattered straight to their places."""
        segment_of = np.searchsorted(self.starts, rows, side="right") - 1
        breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(segment_of) != 0)) + 1
        firsts = [0, *breaks.tolist()]
        lasts = [*breaks.tolist(), len(rows)]
        view = memoryview(out.reshape(-1).view(np.uint8)) if out.size else memoryview(b"")
        size, starts = self.row_bytes, self.starts.tolist()
        heads, segs = rows[firsts].tolist(), segment_of[firsts].tolist()
        places = None if order is None else order.tolist()
        for first, last, head, s in zip(firsts, lasts, heads, segs, strict=True):
            seg = self.segments[s]
            offset = seg.offset + (head - starts[s]) * size
            if places is None:
                self._pread(seg, offset, [view[first * size:last * size]])
                continue
            for start in range(first, last, IOV_MAX):
                stop = min(last, start + IOV_MAX)
                self._pread(seg, offset + (start - first) * size,
                            [view[p * size:(p + 1) * size] for p in places[start:stop]])

    def _pread(self, seg: Segment, offset: int, views: list[memoryview]) -> None:
        """Fill `views` with the bytes of `seg`'s file from `offset` on (one `preadv`,
        more where the kernel returns fewer bytes)."""
        while views:
            try:
                got = os.preadv(_descriptor(seg.path), views, offset)
            except OSError as exc:
                raise DataError(f"{seg.path}: cannot read it: {exc.strerror or exc}.") from None
            if got == 0:
                raise DataError(f"{seg.path}: the file ends before its last row: it changed "
                                "or was cut short after it was opened.")
            offset += got
            while views and got >= len(views[0]):
                got -= len(views[0])
                views.pop(0)
            if views and got:
                views[0] = views[0][got:]


def _descriptor(path: str) -> int:
    """The file's shared descriptor (threads read at once: the data fingerprint is hashed
    beside the checks; the first descriptor stored is kept, another one closed)."""
    if path not in _fds:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise DataError(f"{path}: cannot open it: {exc.strerror or exc}.") from None
        if _fds.setdefault(path, fd) != fd:
            os.close(fd)
    return _fds[path]


def _forget(path: str) -> None:
    if path in _fds:
        os.close(_fds.pop(path))


def concatenate(parts: list[np.ndarray | FileArray]) -> np.ndarray | FileArray:
    """Rows of `parts` one after another: a `FileArray` of all their segments when every
    part is one, else an array in memory."""
    if all(isinstance(p, FileArray) for p in parts) and \
            len({(p.dtype, p.row_shape) for p in parts}) == 1:
        return FileArray([s for p in parts for s in p.segments], parts[0].dtype,
                         parts[0].row_shape)
    # other columns as they are: an image folder's files join without being decoded
    return np.concatenate([np.asarray(p) if isinstance(p, FileArray) else p for p in parts])


def _npy_header(handle: Any, path: str, name: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an NPY header at the handle's position declares; the handle is
    left at the first byte of the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(handle)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read {name} as NPY: {exc}") from None
    if dtype.hasobject or dtype.kind not in "iufb":
        raise DataError(f"{path}: {name} holds {dtype} values; only numeric arrays are read "
                        "as they are needed (stream: true). Leave stream out to read it whole.")
    if fortran and len(shape) > 1:
        raise DataError(f"{path}: {name} is stored in Fortran order; save it in C order "
                        "(numpy.save(path, numpy.ascontiguousarray(x))) to stream it.")
    if not shape:
        raise DataError(f"{path}: {name} is a single value (0-d); every array needs one "
                        "entry per row along its first axis.")
    return dtype, tuple(shape)


def _checked(path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...], name: str,
             size: int) -> FileArray:
    _forget(path)  # the file may have been written anew since it was last opened
    array = FileArray([Segment(path, offset, shape[0])], dtype, shape[1:])
    if offset + array.nbytes > size:
        raise DataError(f"{path}: {name} is cut short: its header declares {shape[0]} rows "
                        f"({array.nbytes} bytes), the file holds {size - offset}.")
    if not shape[0]:
        raise DataError(f"{path}: array {name!r} has no rows.")
    return array


def open_npy(path: Path, name: str) -> FileArray:
    """The array of an NPY file, left in the file."""
    try:
        with open(path, "rb") as handle:
            dtype, shape = _npy_header(handle, str(path), name)
            offset = handle.tell()
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an NPY file.") from None
    return _checked(str(path), offset, dtype, shape, name, size)


def open_npz(path: Path) -> dict[str, FileArray]:
    """Each array of an NPZ archive (as `numpy.savez` writes it), left in the file: the
    members must be stored uncompressed."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable NPZ archive (as numpy.savez writes): "
                        f"{exc}") from None
    columns = {}
    with archive, open(path, "rb") as handle:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise DataError(
                    f"{path}: array {name!r} is compressed (numpy.savez_compressed); a "
                    "compressed archive cannot be read a batch at a time. Save it with "
                    "numpy.savez (uncompressed), or leave stream out to read it into memory.")
            handle.seek(info.header_offset)
            local = handle.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise DataError(f"{path}: array {name!r}: a broken archive entry.")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            handle.seek(info.header_offset + 30 + name_len + extra_len)
            dtype, shape = _npy_header(handle, str(path), f"array {name!r}")
            columns[name] = _checked(str(path), handle.tell(), dtype, shape, name,
                                     info.header_offset + 30 + name_len + extra_len
                                     + info.file_size)
    if not columns:
        raise DataError(f"{path}: the archive holds no arrays.")
    return columns

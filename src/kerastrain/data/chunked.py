"""The numeric data path of preprocessing: chunks of rows, float64 arithmetic, no
whole-array copies.

Statistics and scaled model inputs of a large array (60k x 784 images) are computed
over chunks of about 64k values: the temporaries stay small and in cache, and the
arithmetic is the float64 arithmetic of a whole-array computation, so the results are
the same. Rows selected as a contiguous range are read through views; an image folder's
files are decoded a block at a time and cut into the same chunks, so the statistics are
those of the decoded array.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from kerastrain.data.images import ImageFiles

CHUNK_ELEMENTS = 1 << 16   # values per chunk (512 KiB in float64): temporaries stay in cache


def contiguous_start(rows: np.ndarray) -> int | None:
    """The first row when `rows` is a range start, start+1, ... (then a slice is a view)."""
    if rows.ndim != 1 or not len(rows) or rows.dtype.kind not in "iu":
        return None
    first = int(rows[0])
    if int(rows[-1]) - first != len(rows) - 1 or first < 0:
        return None
    return first if bool((np.diff(rows) == 1).all()) else None


def select_rows(values: np.ndarray, rows: np.ndarray | None, shape: bool) -> np.ndarray:
    """`values[rows]` as (rows, width), or in the array's shape: a read-only view where
    the rows allow one, else a fresh copy."""
    start = 0 if rows is None else contiguous_start(rows)
    if start is None:
        picked = values[rows]
    else:
        picked = values[start:start + (len(values) if rows is None else len(rows))].view()
        picked.flags.writeable = False
    return picked if shape else picked.reshape(len(picked), -1)


def row_chunks(values: np.ndarray, rows: np.ndarray | None,
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, chunk) over the selected rows, `chunk` being rows start:stop of the
    selection as a 2-D (rows, width) array in `values`' dtype; views where possible."""
    n = len(values) if rows is None else len(rows)
    width = max(1, int(np.prod(values.shape[1:], dtype=np.int64)))
    step = max(1, CHUNK_ELEMENTS // width)
    if isinstance(values, ImageFiles):  # files, decoded a block of chunks at a time
        for first, block in values.blocks(rows, step):
            for start in range(0, len(block), step):
                stop = min(len(block), start + step)
                yield first + start, first + stop, block[start:stop].reshape(stop - start, -1)
        return
    offset = 0 if rows is None else contiguous_start(rows)
    for start in range(0, n, step):
        stop = min(n, start + step)
        if offset is not None:
            chunk = values[offset + start:offset + stop]
        else:
            chunk = values[rows[start:stop]]
        yield start, stop, chunk.reshape(stop - start, -1)


def float64_chunks(values: np.ndarray, rows: np.ndarray | None,
                    factor: float) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, x): `row_chunks` cast to float64 and multiplied by `factor`, `x`
    being one reused buffer (a later chunk overwrites it)."""
    width = max(1, int(np.prod(values.shape[1:], dtype=np.int64)))
    buffer = np.empty(max(CHUNK_ELEMENTS, width), dtype=np.float64)
    for start, stop, chunk in row_chunks(values, rows):
        x = buffer[:chunk.size].reshape(chunk.shape)
        x[...] = chunk
        if factor != 1.0:
            x *= factor
        yield start, stop, x


def mean_std(values: np.ndarray, rows: np.ndarray, factor: float) -> tuple[float, float]:
    """Mean and (population) standard deviation of `values[rows] * factor`, two passes in
    float64 over chunks."""
    sums, count = [], 0
    for _, _, x in float64_chunks(values, rows, factor):
        sums.append(float(x.sum()))
        count += x.size
    if not count:
        return 0.0, 1.0
    mean = math.fsum(sums) / count
    squares = []
    for _, _, x in float64_chunks(values, rows, factor):
        x -= mean
        np.square(x, out=x)
        squares.append(float(x.sum()))
    return mean, math.sqrt(math.fsum(squares) / count)


def min_max(values: np.ndarray, rows: np.ndarray, factor: float) -> tuple[float, float]:
    """Smallest and largest of `values[rows] * factor` (scaling is monotonic: the extremes
    are found in the values' own dtype, then scaled)."""
    lows, highs = [], []
    for _, _, chunk in row_chunks(values, rows):
        if chunk.size:
            lows.append(float(chunk.min()) * factor)
            highs.append(float(chunk.max()) * factor)
    if not lows:
        return 0.0, 1.0
    low, high = min(lows), max(highs)
    return (low, high) if factor >= 0 else (min(highs), max(lows))

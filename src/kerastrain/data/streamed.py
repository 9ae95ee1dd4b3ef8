"""Rows read as training goes: the rows of a source left in its files (`stream: true`,
`data/filearray.py`) are given to Keras as a `RowStream`, whose batches are read from the
file and put through the fitted preprocessing one at a time, so neither the data nor the
model's float32 input is ever held whole.

A `RowStream` stands where the arrays of a fold's rows would (`Experiment.arrays`); the
feed (`models/feed.py`) hands Keras its `keras_data`, a tf.data pipeline. The targets
are small and stay an array. Without shuffling, the batches are the in-memory path's, in
the same order, so the history and scores are the same to the bit; with shuffling, each
epoch's order is a NumPy permutation drawn from the run's seed (the in-memory path draws
its order in tf.data), so the numbers differ as another seed's do.

The rows are read up to `CHUNK_BATCHES` batches (and `CHUNK_BYTES` of input) at a time,
in one call into Python, and tf.data cuts the chunk into the batches (`rebatch`): Keras's
`PyDataset`, a call per batch through its enqueuer and `from_generator`, cost about 0.6 ms
a batch, 4 s of CPU per epoch of 216,000 rows, more than reading them. A pass over the
pipeline is an epoch: the first reads the order drawn at the start, each later one draws
its own as it starts (the orders `PyDataset.on_epoch_end` drew, in the same sequence, so a
run's numbers are unchanged; a pass Keras stops reading early does not repeat its order).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data.filearray import FileArray
from kerastrain.data.table import Table

STREAM_ROWS = 4096  # fewer rows (a probe, a small fold) are transformed into arrays
QUEUE = 8           # batches read ahead of training at most (and one chunk)
CHUNK_BATCHES = 32  # batches read in one call, at most
CHUNK_BYTES = 16 << 20  # model input read in one call, at most (one batch if wider)
TRIM_EVERY = 8      # chunks between hand-backs of freed heap memory (glibc's malloc_trim)


def is_streamed(table: Table, names: list[str]) -> bool:
    """Whether any of these columns is left in its file (`stream: true`)."""
    return any(isinstance(table.columns[n], FileArray) for n in names)


def hold(table: Table, names: list[str]) -> None:
    """Read these columns (targets, split columns: one value per row) into memory, where
    their whole is needed (task inference, stratified splits, labels)."""
    for name in names:
        if isinstance(table.columns[name], FileArray):
            table.columns[name] = np.asarray(table.columns[name])


class RowStream:
    """The model input of `rows` of a table left in its files, through `pre`."""

    def __init__(self, pre: Any, table: Table, rows: np.ndarray) -> None:
        self.pre, self.table, self.rows = pre, table, np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, positions: np.ndarray) -> np.ndarray:
        """The transformed input of the rows at `positions` (rows read in file order)."""
        return self.pre.transform_x(self.table, self.rows[positions])

    def keras_data(self, y: np.ndarray | None, batch_size: int,
                   shuffle_seed: int | None = None, skip_epochs: int = 0) -> Any:
        """A tf.data pipeline of (input, target) batches (inputs alone when `y` is None);
        each pass in a new order when `shuffle_seed` is given (the first `skip_epochs`
        orders skipped)."""
        tf = _keras.tf()
        x = self.batch(np.arange(1))
        per_chunk = max(1, min(CHUNK_BATCHES, CHUNK_BYTES // max(1, batch_size * x.nbytes)))
        epochs = Epochs(self, y, batch_size, shuffle_seed, skip_epochs, per_chunk)
        spec = tf.TensorSpec((None, *x.shape[1:]), x.dtype)
        if y is not None:
            spec = (spec, tf.TensorSpec((None, *y.shape[1:]), y.dtype))
        data = tf.data.Dataset.from_generator(epochs.chunks, output_signature=spec)
        data = data.prefetch(1).rebatch(batch_size).prefetch(QUEUE)
        return data.apply(tf.data.experimental.assert_cardinality(len(epochs)))


class Epochs:
    """The passes over a stream's rows: each in its order (the rows' own, or a NumPy
    permutation from the seed, a new one drawn as each pass after the first starts),
    `per_chunk` batches at a time."""

    def __init__(self, stream: RowStream, y: np.ndarray | None, batch_size: int,
                 seed: int | None, skip: int, per_chunk: int = CHUNK_BATCHES) -> None:
        self.stream, self.y, self.batch_size = stream, y, batch_size
        self.per_chunk = per_chunk
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.order = np.arange(len(stream))
        for _ in range(skip + 2 if self.rng is not None else 0):  # as the PyDataset drew
            self.order = self.rng.permutation(len(stream))  # (Keras's fit ends an epoch first)
        self.passes = 0
        self.chunks_read = 0

    def __len__(self) -> int:
        return math.ceil(len(self.stream) / self.batch_size)

    def next_order(self) -> np.ndarray:
        """The order of the pass starting now: drawn as it starts (not once the previous
        pass was read to its end, which Keras may stop short of), the first's at the start."""
        if self.rng is not None and self.passes:
            self.order = self.rng.permutation(len(self.order))
        self.passes += 1
        return self.order

    def chunks(self) -> Iterator[Any]:
        """One pass: the batches of its order, `per_chunk` at a time."""
        order, step = self.next_order(), self.batch_size * self.per_chunk
        for start in range(0, len(order), step):
            self.chunks_read += 1
            if self.chunks_read % TRIM_EVERY == 0 and _trimmer() is not None:
                _trimmer()(0)
            positions = order[start:start + step]
            x = self.stream.batch(positions)
            yield x if self.y is None else (x, self.y[positions])


_classes: dict[str, Any] = {}


def _trimmer() -> Any:
    """glibc's `malloc_trim`, or None elsewhere. Each batch's arrays are freed once Keras
    has used them, but glibc keeps such freed pages in its heaps, split among threads, so
    without a trim the resident memory creeps up with the batches read (about 30 MiB over
    30,000 batches of 784 floats); `malloc_trim(0)` hands them back."""
    if "trim" not in _classes:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        _classes["trim"] = getattr(libc, "malloc_trim", None)
    return _classes["trim"]

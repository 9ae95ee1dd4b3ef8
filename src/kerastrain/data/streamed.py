"""Rows read as training goes: the rows of a source left in its files (`stream: true`,
`data/filearray.py`) are given to Keras as a `RowStream`, whose batches are read from the
file and put through the fitted preprocessing one at a time, so neither the data nor the
model's float32 input is ever held whole.

A `RowStream` stands where the arrays of a fold's rows would (`Experiment.arrays`); the
feed (`models/feed.py`) hands Keras its `keras_data` (a `keras.utils.PyDataset`). The
targets are small and stay an array. Without shuffling, the batches are the in-memory
path's, in the same order, so the history and scores are the same to the bit; with
shuffling, each epoch's order is a NumPy permutation drawn from the run's seed (the
in-memory path draws its order in tf.data), so the numbers differ as another seed's do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import threading
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data.filearray import FileArray
from kerastrain.data.table import Table

STREAM_ROWS = 4096  # fewer rows (a probe, a small fold) are transformed into arrays
QUEUE = 8           # batches read ahead of training at most
READERS = 2         # threads that read them
TRIM_EVERY = 256    # batches between hand-backs of freed heap memory (glibc's malloc_trim)


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

    def keras_data(self, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None,
                   skip_epochs: int = 0) -> Any:
        """A `keras.utils.PyDataset` of (input, target) batches; reshuffled after every
        epoch when `shuffle_seed` is given (the first `skip_epochs` orders skipped)."""
        return _dataset_class()(self, y, batch_size, shuffle_seed, skip_epochs)


_classes: dict[str, type] = {}


def _trimmer() -> Any:
    """glibc's `malloc_trim`, or None elsewhere. Each batch's arrays are freed once Keras
    has used them, but glibc keeps such freed pages in its heaps, split among threads, so
    without a trim the resident memory creeps up with the batches read (about 30 MiB over
    30,000 batches of 784 floats); `malloc_trim(0)` hands them back."""
    if "trim" not in _classes:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        _classes["trim"] = getattr(libc, "malloc_trim", None)  # type: ignore[assignment]
    return _classes["trim"]


def _dataset_class() -> type:
    if "batches" not in _classes:
        keras = _keras.keras()

        class RowBatches(keras.utils.PyDataset):
            def __init__(self, stream: RowStream, y: np.ndarray, batch_size: int,
                         seed: int | None, skip: int) -> None:
                # two reader threads and a queue of QUEUE batches (Keras's enqueuer): the
                # next batches are read while the model trains, and no more are held;
                # without it tf.data's autotuned prefetch holds as many as it likes
                super().__init__(workers=READERS, max_queue_size=QUEUE)
                self.lock = threading.Lock()  # one batch read at a time, in order
                self.stream, self.y, self.batch_size = stream, y, batch_size
                self.rng = None if seed is None else np.random.default_rng(seed)
                self.order = np.arange(len(stream))
                for _ in range(skip + 1 if self.rng is not None else 0):
                    self.order = self.rng.permutation(len(stream))

            def __len__(self) -> int:
                return math.ceil(len(self.stream) / self.batch_size)

            def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
                if index % TRIM_EVERY == TRIM_EVERY - 1 and _trimmer() is not None:
                    _trimmer()(0)
                positions = self.order[index * self.batch_size:(index + 1) * self.batch_size]
                with self.lock:
                    return self.stream.batch(positions), self.y[positions]

            def on_epoch_end(self) -> None:
                if self.rng is not None:
                    self.order = self.rng.permutation(len(self.stream))

        _classes["batches"] = RowBatches
    return _classes["batches"]

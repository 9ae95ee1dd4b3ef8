"""The model `serve` runs, and concurrent requests batched into one call of it.

`Predictor` calls the run's raw-input model as one concrete TensorFlow function (traced
once, at start) of packed inputs: the numeric columns as one float32 matrix, the string
columns as one string matrix, each array column on its own. A concrete function of a few
tensors is called directly (no `model.predict`, whose per-call setup costs tens of
milliseconds; no polymorphic `tf.function`'s signature binding and conversion per column,
which cost as much as running the graph). `Batcher` runs the requests that arrive while
the model is busy as one call, as TensorFlow Serving batches: an idle server runs a
request at once; a loaded one amortizes the call over the waiting requests' rows.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data.graphdata import GraphPreprocessor
from kerastrain.export.load import RawModel
from kerastrain.inference import graph_prediction_columns, prediction_columns
from kerastrain.serving.rows import columns

MAX_BATCH_ROWS = 4096   # waiting requests run together up to this many rows
INLINE_ROWS = 256       # a batch this small runs in the event loop's thread (a millisecond
                        # or less); a larger one in the worker thread, the loop answering
TURNS = 3               # loop turns a batch waits for requests already received to queue


class Predictor:
    """The compiled model and what turns its outputs into `predict`'s fields."""

    def __init__(self, raw: RawModel) -> None:
        tf = _keras.tf()
        self.raw = raw
        self.marks = frozenset(m.strip().lower() for m in raw.missing_markers)
        numbers = [s.key for s in raw.inputs if s.dtype == "float32" and not s.shape]
        strings = [s.key for s in raw.inputs if s.dtype == "string"]
        # the function's arguments: (dtype, keys) a matrix of columns, (None, [key]) one array
        self.args = [(dtype, keys) for dtype, keys in (("float32", numbers),
                                                      ("string", strings)) if keys]
        self.args += [(None, [s.key]) for s in raw.inputs if s.shape]
        model, args = raw.model, self.args

        def call(*tensors: Any) -> dict[str, Any]:
            inputs = {}
            for (dtype, keys), tensor in zip(args, tensors, strict=True):
                inputs.update({key: tensor[:, i] for i, key in enumerate(keys)}
                              if dtype else {keys[0]: tensor})
            return model(inputs, training=False)

        shapes = {s.key: s.shape for s in raw.inputs}
        specs = [tf.TensorSpec((None, len(keys)), getattr(tf, dtype)) if dtype else
                 tf.TensorSpec((None, *shapes[keys[0]]), tf.float32) for dtype, keys in args]
        self.fn = tf.function(call, input_signature=specs).get_concrete_function()
        self.predict([{spec.column: None for spec in raw.inputs}])   # run once, now

    def pack(self, rows: list[Any]) -> list[np.ndarray]:
        """The function's inputs from request rows; `RowProblems` naming each bad cell."""
        cols = columns(rows, self.raw.inputs, self.marks)
        return [np.stack([cols[k] for k in keys], axis=1) if dtype else cols[keys[0]]
                for dtype, keys in self.args]

    def run(self, packed: list[np.ndarray]) -> list[dict[str, Any]]:
        """One call of the model on packed rows: one dict of `predict`'s fields per row."""
        out = {k: v.numpy() for k, v in self.fn(*packed).items()}
        pre = self.raw.pre
        if isinstance(pre, GraphPreprocessor):
            fields = graph_prediction_columns(pre, {
                name: out[f"{name}_probabilities" if p.task == "classification" else name]
                for name, p in pre.outputs.items()})
        else:
            fields = prediction_columns(pre, out["probabilities" if pre.task ==
                                                 "classification" else "value"])
        names = list(fields)
        values = [_plain(fields[name]) for name in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]

    def predict(self, rows: list[Any]) -> list[dict[str, Any]]:
        return self.run(self.pack(rows)) if rows else []


def _plain(values: Any) -> list[Any]:
    """A column of fields as Python values (JSON's)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]


class Batcher:
    """Requests' rows run through `predictor` together: the requests that arrive while
    it is busy wait and then run as one call; each gets its own rows' predictions. A
    small batch runs in the event loop's thread (no thread hop, no contention for the
    GIL), a large one in a worker thread. Use from one event loop."""

    def __init__(self, predictor: Predictor, max_rows: int = MAX_BATCH_ROWS) -> None:
        self.predictor, self.max_rows = predictor, max_rows
        self.pending: list[tuple[list[np.ndarray], asyncio.Future]] = []
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="kerastrain-model")
        self.draining: asyncio.Task | None = None

    async def predict(self, rows: list[Any]) -> list[dict[str, Any]]:
        """The rows' predictions; `RowProblems` (this request's alone) for bad rows."""
        if not rows:
            return []
        packed = self.predictor.pack(rows)
        future = asyncio.get_running_loop().create_future()
        self.pending.append((packed, future))
        if self.draining is None:
            self.draining = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                for _ in range(TURNS):
                    await asyncio.sleep(0)
                batch = self._take()
                try:
                    if sum(len(packed[0]) for packed, _ in batch) <= INLINE_ROWS:
                        results = self._run(batch)
                    else:
                        results = await loop.run_in_executor(self.worker, self._run, batch)
                except Exception as exc:  # the model failed: every request of the batch
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():   # its client went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.draining = None

    def _take(self) -> list[tuple[list[np.ndarray], asyncio.Future]]:
        size, taken = 0, 0
        for packed, _ in self.pending:
            if taken and size + len(packed[0]) > self.max_rows:
                break
            size, taken = size + len(packed[0]), taken + 1
        batch, self.pending = self.pending[:taken], self.pending[taken:]
        return batch

    def _run(self, batch: list[tuple[list[np.ndarray], Any]]) -> list[list[dict[str, Any]]]:
        if len(batch) == 1:
            return [self.predictor.run(batch[0][0])]
        packed = [np.concatenate(parts) for parts in zip(*(p for p, _ in batch), strict=True)]
        rows = self.predictor.run(packed)
        out, start = [], 0
        for part, _ in batch:
            out.append(rows[start:start + len(part[0])])
            start += len(part[0])
        return out

"""What `model.fit` is given: small arrays as one tf.data pipeline, the rest as arrays.

Given arrays, Keras (3.15) builds a tf.data pipeline that slices and shuffles them in a
mapped function, and instantiates it anew for every epoch and every validation pass:
about 15 ms each on a CPU, several times the whole epoch of a small model (iris: 6
batches). A pipeline of the tensors themselves (`from_tensor_slices`, `shuffle`,
`batch`) starts in about 1 ms, so small data is given to Keras that way. It holds the
arrays once more as tensors and the shuffle buffer once more, so data over
`SMALL_BYTES` is given as arrays (where an epoch takes seconds, the start-up is noise).
Streams (`RowStream`, `ImageStream`) give Keras their own batches.

Each iterator of the pipeline draws a new order from the run's seed, the same sequence in
every process. Keras 3.15 makes two iterators per epoch (the epoch's, and one it makes
at the epoch's end and drops: `DRAWS_PER_EPOCH`), so a model resumed after k epochs
skips 2k draws (`skip_epochs`) and sees the orders the uninterrupted run saw;
`tests/test_resume.py` holds a resumed run to the uninterrupted run's numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data.imagestream import ImageStream
from kerastrain.data.streamed import RowStream

SMALL_BYTES = 64 * 2**20
DRAWS_PER_EPOCH = 2


def _arrays(part: Any) -> list[np.ndarray]:
    if part is None:
        return []
    if isinstance(part, dict):
        return [np.asarray(v) for v in part.values()]
    if isinstance(part, (list, tuple)):
        return [np.asarray(v) for v in part]
    return [np.asarray(part)]


def is_stream(x: Any) -> bool:
    """Whether `x` is read as Keras goes (a memory-mapped file's rows, image files)."""
    return isinstance(x, (RowStream, ImageStream))


def is_small(x: Any, y: Any) -> bool:
    """Whether `x` and `y` together fit in `SMALL_BYTES`."""
    return sum(a.nbytes for a in _arrays(x) + _arrays(y)) <= SMALL_BYTES


def _pipeline(x: Any, y: Any, batch_size: int, shuffle_seed: int | None) -> Any:
    tf = _keras.tf()
    data = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x)
    if shuffle_seed is not None:
        rows = len(_arrays(x)[0])
        data = data.shuffle(rows, seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(2)


def training_input(x: Any, y: Any, batch_size: int, shuffle: bool, seed: int,
                   skip_epochs: int = 0) -> dict[str, Any]:
    """`model.fit`'s x, y, batch_size and shuffle for these training rows."""
    if isinstance(x, RowStream):
        data = x.keras_data(y, batch_size, seed if shuffle else None, skip_epochs)
        return {"x": data, "y": None, "batch_size": None, "shuffle": False}
    if isinstance(x, ImageStream):
        data = x.keras_data(y, batch_size, seed if shuffle else None)
    elif not is_small(x, y):
        return {"x": x, "y": y, "batch_size": batch_size, "shuffle": shuffle}
    else:
        data = _pipeline(x, y, batch_size, seed if shuffle else None)
    for _ in range(DRAWS_PER_EPOCH * skip_epochs if shuffle else 0):
        iter(data)  # each iterator draws the next order
    return {"x": data, "y": None, "batch_size": None, "shuffle": False}


def evaluation_input(x: Any, y: Any, batch_size: int) -> Any:
    """`validation_data` for these rows: a pipeline when small, else the arrays."""
    if is_stream(x):
        return x.keras_data(y, batch_size)
    if not is_small(x, y):
        return (x, y)
    return _pipeline(x, y, batch_size, None)


def scoring_input(x: Any, y: Any, batch_size: int) -> dict[str, Any]:
    """`model.evaluate`'s x, y and batch_size for these rows, given as `fit` validates on
    them: the evaluation Keras traced for one serves the other."""
    if is_stream(x):
        return {"x": x.keras_data(y, batch_size)}
    if not is_small(x, y):
        return {"x": x, "y": y, "batch_size": batch_size}
    return {"x": _pipeline(x, y, batch_size, None)}


def prediction_input(x: Any, batch_size: int) -> dict[str, Any]:
    """`model.predict`'s x and batch_size: a stream's batches, else the arrays."""
    if is_stream(x):
        return {"x": x.keras_data(None, batch_size)}
    return {"x": x, "batch_size": batch_size}

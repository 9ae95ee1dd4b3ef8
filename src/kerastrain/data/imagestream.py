"""An image folder's rows streamed into Keras: the files decoded a batch at a time.

An `ImageStream` stands where the arrays of an image folder's rows would
(`Experiment.arrays`, `evaluate`, `predict`). Its `keras_data` is the tf.data pipeline
`image_dataset_from_directory` builds, on the rows' file paths: shuffled every epoch from
the run's seed when asked, each file read, decoded and put through the fitted
preprocessing in parallel (`map`, AUTOTUNE), batched, prefetched. The preprocessing is
the in-memory path's `NumericColumns` layer, applied once to the 256 values a pixel can
take: each pixel is looked up (`tf.gather`) instead of computed in float64. The decoded
images are never held whole, so memory does not grow with the number of files.

The numbers are the in-memory path's: tf.data's `shuffle` draws its order from the seed
and the number of elements alone, so the shuffled paths come in the order in which the
in-memory pipeline of the same rows (`models/feed.py`, data under 64 MiB) gives the
arrays; the pixels and the arithmetic are the same (a test holds a folder's history and
scores equal to an NPZ of its images). Arrays over 64 MiB are shuffled by Keras's array
adapter instead, in another order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data.images import ImageFiles, decoder, is_decode_failure
from kerastrain.data.layers import numeric_layer
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.table import Table
from kerastrain.errors import DataError


class ImageStream:
    """The model input of `rows` of an image column (all rows: None), through `pre`."""

    def __init__(self, pre: Preprocessor, files: ImageFiles, rows: np.ndarray | None) -> None:
        self.files = files if rows is None else files.take(rows)
        # the fitted layer's output for each of the 256 pixel values: it acts on each value
        # alone, so looking a pixel up gives what applying it gives, to the bit
        levels = np.arange(256, dtype=np.uint8)
        self.lookup = np.asarray(numeric_layer(pre.features, pre.rescale)(levels),
                                 dtype=np.float32)

    def __len__(self) -> int:
        return len(self.files)

    def keras_data(self, y: np.ndarray | None, batch_size: int,
                   shuffle_seed: int | None = None) -> Any:
        """A tf.data pipeline of (input, target) batches, or of inputs when `y` is None;
        reshuffled on every iteration when `shuffle_seed` is given."""
        tf = _keras.tf()
        paths = tf.constant(list(self.files.paths), dtype=tf.string)
        data = tf.data.Dataset.from_tensor_slices(paths if y is None else (paths, y))
        if shuffle_seed is not None:
            data = data.shuffle(len(self), seed=shuffle_seed, reshuffle_each_iteration=True)
        load, lookup = decoder(self.files.decoding), tf.constant(self.lookup)

        def image(path: Any) -> Any:
            return tf.gather(lookup, tf.cast(load(path), "int32"))

        if y is None:
            data = data.map(image, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            data = data.map(lambda path, target: (image(path), target),
                            num_parallel_calls=tf.data.AUTOTUNE)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def image_input(pre: Any, table: Table, rows: np.ndarray | None) -> ImageStream | None:
    """A stream of `rows` when the model's one input is an image folder's files."""
    if not isinstance(pre, Preprocessor) or len(pre.features) != 1:
        return None
    column = table.columns[pre.features[0]["name"]]
    return ImageStream(pre, column, rows) if isinstance(column, ImageFiles) else None


def model_input(pre: Preprocessor, table: Table, rows: np.ndarray | None = None) -> Any:
    """The model's input of `rows` (all by default): a stream of image files, else arrays."""
    stream = image_input(pre, table, rows)
    return stream if stream is not None else pre.transform_x(table, rows)


@contextmanager
def files_named(table: Table) -> Iterator[None]:
    """A file of the table that TensorFlow fails to decode while Keras reads a pipeline
    (its header was fine) is a `DataError` naming it: the files are decoded again, in
    order, up to the first that fails."""
    try:
        yield
    except Exception as exc:
        images = [c for c in table.columns.values() if isinstance(c, ImageFiles)]
        if not images or not is_decode_failure(exc):
            raise
        message = images[0].unreadable()
        if message is None:
            raise
        raise DataError(message) from None

"""An image folder's rows streamed into Keras: the files decoded a batch at a time.

An `ImageStream` stands where the arrays of an image folder's rows would
(`Experiment.arrays`, `evaluate`, `predict`). Its `keras_data` is the tf.data pipeline
`image_dataset_from_directory` builds, on the rows' file paths: shuffled every epoch from
the run's seed when asked, each file read, decoded and put through the fitted
preprocessing in parallel (`map`, AUTOTUNE), batched, prefetched. The preprocessing is
the in-memory path's `NumericColumns` layer, checked once on the 256 values a pixel can
take: where the same arithmetic in float32 gives its float64 results on all 256 to the
bit (`numeric: none` with `rescale: 1/255` does), the pipeline computes in float32, else
in the layer's float64. The decoded images are never held whole, so memory does not grow
with the number of files. While a model trains, the stream keeps its decoded images on
disk and its pipeline reads them back, a batch at a time, from the second pass on
(`imagecache.py`).

The numbers are the in-memory path's: tf.data's `shuffle` draws its order from the seed
and the number of elements alone, so the shuffled paths come in the order in which the
in-memory pipeline of the same rows (`models/feed.py`, data under 64 MiB) gives the
arrays; the pixels and the arithmetic are the same (a test holds a folder's history and
scores equal to an NPZ of its images). Arrays over 64 MiB are shuffled by Keras's array
adapter instead, in another order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data.imagecache import KeptImages, kept_folder, kept_images
from kerastrain.data.images import ImageFiles, decoder, is_decode_failure
from kerastrain.data.layers import numeric_layer
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.table import Table
from kerastrain.errors import DataError


class ImageStream:
    """The model input of `rows` of an image column (all rows: None), through `pre`."""

    def __init__(self, pre: Preprocessor, files: ImageFiles, rows: np.ndarray | None) -> None:
        self.files = files if rows is None else files.take(rows)
        layer = numeric_layer(pre.features, pre.rescale)
        self.scale = _float32_form(layer) or layer
        self._kept: tuple[Path | None, KeptImages | None] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def keras_data(self, y: np.ndarray | None, batch_size: int,
                   shuffle_seed: int | None = None) -> Any:
        """A tf.data pipeline of (input, target) batches, or of inputs when `y` is None;
        reshuffled on every iteration when `shuffle_seed` is given."""
        tf = _keras.tf()
        paths = tf.constant(list(self.files.paths), dtype=tf.string)
        rows = np.arange(len(self), dtype=np.int64)
        data = tf.data.Dataset.from_tensor_slices((paths, rows) if y is None else
                                                  (paths, rows, y))
        if shuffle_seed is not None:  # the order depends on the seed and length alone
            data = data.shuffle(len(self), seed=shuffle_seed, reshuffle_each_iteration=True)
        load, scale, kept = decoder(self.files.decoding), self.scale, self._kept_images()
        if kept is not None:  # a batch at a time, its images read back once kept
            data = data.batch(batch_size)
            images = kept.batch_images(load)
        else:
            def images(path: Any, row: Any) -> Any:
                return load(path)
        auto = tf.data.AUTOTUNE
        if y is None:
            data = data.map(lambda path, row: scale(images(path, row)), auto)
        else:
            data = data.map(lambda path, row, target: (scale(images(path, row)), target), auto)
        return (data if kept is not None else data.batch(batch_size)).prefetch(auto)

    def _kept_images(self) -> KeptImages | None:
        """Where this stream keeps its decoded images while training (`imagecache.py`),
        one file for all its pipelines; None outside training."""
        folder = kept_folder()
        if self._kept is None or self._kept[0] != folder:
            self._kept = (folder, kept_images(len(self), self.files.shape[1:]))
        return self._kept[1]


def _float32_form(layer: Any) -> Callable[[Any], Any] | None:
    """The fitted layer's arithmetic in float32 (`x * rescale` or `x / (1 / rescale)`,
    then `- shift` and `/ divisor` where they are not 0 and 1), if it gives the layer's
    float64 results bit for bit on all 256 values a pixel can take (then on every image);
    None if neither form does."""
    tf = _keras.tf()
    levels = np.arange(256, dtype=np.uint8)
    exact = np.asarray(layer(levels), dtype=np.float32).view(np.uint32)
    rescale, _, shift, divisor, _ = layer.constants()
    rescale, shift, divisor = (np.asarray(c, dtype=np.float64) for c in (rescale, shift,
                                                                         divisor))
    if shift.size != 1 or divisor.size != 1:
        return None
    rescale, shift, divisor = float(rescale), float(shift), float(divisor)
    for form in ("times", "over"):
        def scale(x: Any, form: str = form) -> Any:
            x = tf.cast(x, "float32")
            x = x * np.float32(rescale) if form == "times" else x / np.float32(1 / rescale)
            x = x - np.float32(shift) if shift != 0.0 else x
            return x / np.float32(divisor) if divisor != 1.0 else x
        if np.array_equal(np.asarray(scale(tf.constant(levels))).view(np.uint32), exact):
            return scale
    return None


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

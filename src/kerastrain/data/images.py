"""The images of an image folder, read when they are used: `ImageFiles`, the `image`
column of a `FolderTable` (`folders.py`), holds each row's file path, not its pixels.

Reading a folder reads every file's bytes once (a few threads), and nothing is decoded:

- each file must begin as a PNG, JPEG, GIF or BMP does (the signature `tf.io.decode_image`
  tells the format by), else a `DataError` names it before any training;
- each file's 128-bit BLAKE2b digest is kept: the leakage check's row hashes (files of
  equal bytes are equal rows) and the data fingerprint come from them, without a decode.

`ImageFiles` answers as the uint8 array `(rows, height, width, channels)` of the decoded
images would (`shape`, `dtype`, `ndim`, `len`), and indexing it decodes those rows. Images
are decoded as `keras.utils.image_dataset_from_directory` decodes them
(`tf.io.decode_image`, then `keras.ops.image.resize`, or `tf.image.resize_with_pad` for
`pad_to_aspect_ratio`) and rounded to 8 bits per channel; `batches` decodes many in one
tf.data pipeline, `blocks` serves statistics (`chunked.py`) a block of rows at a time.
A file whose body does not decode (its header was fine) is named by `unreadable`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.errors import DataError

SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
DEFAULT_SIZE = (256, 256)
DECODE_BATCH = 256   # files decoded per batch outside training (statistics, a few rows)
DIGEST_BYTES = 16
READERS = 8          # threads reading files (I/O and hashing release the GIL)
SCAN_RUN = 64        # files a thread reads in one task
SCAN_BATCH = 32      # tasks handed to them at a time
EXACT_AT_SCALE_1 = ("bilinear", "nearest", "area")   # resizing to the same size: identity
OP_NAMES = ("read_image_file", "decode_image_file")   # in a failed op's message


@dataclass(frozen=True)
class Decoding:
    """How a folder's images are decoded: the source's image options."""

    size: tuple[int, int] = DEFAULT_SIZE
    channels: int = 3
    interpolation: str = "bilinear"
    crop: bool = False
    pad: bool = False

    @classmethod
    def of(cls, spec: Any) -> Decoding:
        return cls(tuple(spec.image_size or DEFAULT_SIZE), CHANNELS[spec.color_mode or "rgb"],
                   spec.interpolation or "bilinear", bool(spec.crop_to_aspect_ratio),
                   bool(spec.pad_to_aspect_ratio))


def _digest(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror}.") from None
    if not data.startswith(SIGNATURES):
        shown = "an empty file" if not data else f"it begins {data[:8]!r}"
        raise DataError(f"{path}: not a readable image (PNG, JPEG, BMP or GIF): {shown}.")
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def _digests(files: list[Path]) -> bytes:
    return b"".join(map(_digest, files))


def scan(files: list[Path]) -> np.ndarray:
    """Every file's digest, (files, 16) uint8; a `DataError` for the first file (in the
    given order) that cannot be read or is no image. Each thread is handed a run of
    `SCAN_RUN` files (a future per file cost more than reading it)."""
    out = np.empty((len(files), DIGEST_BYTES), dtype=np.uint8)
    runs = [files[start:start + SCAN_RUN] for start in range(0, len(files), SCAN_RUN)]
    with ThreadPoolExecutor(READERS) as pool:
        for start in range(0, len(runs), SCAN_BATCH):   # a few futures alive at a time
            digests = b"".join(pool.map(_digests, runs[start:start + SCAN_BATCH]))
            first = start * SCAN_RUN
            out[first:first + len(digests) // DIGEST_BYTES] = np.frombuffer(
                digests, np.uint8).reshape(-1, DIGEST_BYTES)
    return out


class ImageFiles:
    """An image column read from files: the decoded uint8 images on demand."""

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: np.ndarray, digests: np.ndarray, decoding: Decoding) -> None:
        self.paths, self.digests, self.decoding = paths, digests, decoding

    @classmethod
    def read(cls, files: list[Path], decoding: Decoding) -> ImageFiles:
        """The files' column: each one's header checked and digest taken."""
        return cls(np.asarray([str(f) for f in files], dtype=object), scan(files), decoding)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.decoding.size, self.decoding.channels)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> np.ndarray:
        """The decoded images of these rows (an int: one image)."""
        if isinstance(index, (int, np.integer)):
            return self[[int(index)]][0]
        paths = list(self.paths[index])
        out = np.empty((len(paths), *self.shape[1:]), dtype=np.uint8)
        start = 0
        for batch in self.batches(paths, DECODE_BATCH):
            out[start:start + len(batch)] = batch
            start += len(batch)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.concatenate and not kwargs:   # a folder's parts (data.validation, ...)
            parts = list(args[0])
            if all(isinstance(p, ImageFiles) and p.decoding == self.decoding for p in parts):
                return ImageFiles(np.concatenate([p.paths for p in parts]),
                                  np.concatenate([p.digests for p in parts]), self.decoding)
        return NotImplemented

    def take(self, rows: np.ndarray) -> ImageFiles:
        """These rows' files, undecoded."""
        return ImageFiles(self.paths[rows], self.digests[rows], self.decoding)

    def batches(self, paths: list[str], size: int) -> Iterator[np.ndarray]:
        """The images of `paths` in order, `size` at a time, decoded in one pipeline; a
        file that does not decode is a `DataError` naming it."""
        if not paths:
            return
        tf = _keras.tf()
        load = decoder(self.decoding)
        data = tf.data.Dataset.from_tensor_slices(tf.constant(paths, dtype=tf.string))
        data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        start, batches = 0, iter(data.batch(size).prefetch(1))
        while start < len(paths):
            try:
                batch = next(batches).numpy()
            except tf.errors.OpError:
                raise DataError(_bad_image(paths[start:start + size], load, tf)) from None
            yield batch
            start += len(batch)

    def blocks(self, rows: np.ndarray | None, step: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first, images) over the selected rows in order, a block of a multiple of
        `step` rows at a time (`chunked.row_chunks` cuts it into its chunks)."""
        paths = list(self.paths if rows is None else self.paths[rows])
        first = 0
        for block in self.batches(paths, step * max(1, DECODE_BATCH // step)):
            yield first, block
            first += len(block)

    def row_hashes(self) -> np.ndarray:
        """A 64-bit hash per row, equal for files of equal bytes."""
        return np.ascontiguousarray(self.digests[:, :8]).view(np.uint64).reshape(-1)

    def fingerprint(self) -> bytes:
        """What the data fingerprint hashes: the decoded shape and every file's digest."""
        return f"\x1f{self.dtype.str}{self.shape}\x1f".encode() + self.digests.tobytes()

    def unreadable(self) -> str | None:
        """The message for the first file that does not decode, None when all do."""
        try:
            for _ in self.batches(list(self.paths), DECODE_BATCH):
                pass
        except DataError as exc:
            return str(exc)
        return None


def decoder(decoding: Decoding) -> Callable[[Any], Any]:
    """path -> uint8 image tensor (height, width, channels), as Keras decodes, rounded.
    An image of the size asked is not resized where resizing it would leave every pixel
    as it is (an interpolating method, sampled at the pixels' own centres)."""
    tf, keras = _keras.tf(), _keras.keras()
    height, width = decoding.size

    def resized(image: Any) -> Any:
        if decoding.pad:
            image = tf.image.resize_with_pad(image, height, width,
                                             method=decoding.interpolation)
        else:
            image = keras.ops.image.resize(
                tf.cast(image, "float32"), (height, width),
                interpolation=decoding.interpolation, crop_to_aspect_ratio=decoding.crop,
                data_format="channels_last")
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), "uint8")

    def load(path: Any) -> Any:
        image = tf.io.decode_image(tf.io.read_file(path, name=OP_NAMES[0]),
                                   channels=decoding.channels, expand_animations=False,
                                   name=OP_NAMES[1])
        if decoding.interpolation not in EXACT_AT_SCALE_1:
            return resized(image)
        same = tf.reduce_all(tf.shape(image)[:2] == (height, width))
        image = tf.cond(same, lambda: image, lambda: resized(image))
        image.set_shape((height, width, decoding.channels))
        return image

    return load


def _bad_image(names: list[str], load: Callable[[Any], Any], tf: Any) -> str:
    """The message for the first file of a failed batch that does not decode."""
    for name in names:
        try:
            load(tf.constant(name))
        except (tf.errors.OpError, ValueError) as exc:
            reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "",
                            str(getattr(exc, "message", exc)).strip().splitlines()[0])
            return f"{name}: not a readable image (PNG, JPEG, BMP or GIF): {reason}"
    return f"{names[0]}: the images from here on could not be decoded."


def is_decode_failure(exc: BaseException) -> bool:
    """Whether TensorFlow failed reading or decoding an image file (in a pipeline)."""
    tf = _keras.tf()
    return isinstance(exc, tf.errors.OpError) and any(n in str(exc) for n in OP_NAMES)

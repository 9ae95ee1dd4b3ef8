"""Data sources: files, scikit-learn's bundled sets, generators, and Keras's Fashion-MNIST.

Every source gives a `Table`; its `default_target` is the column used when the config
names no target.
"""

from __future__ import annotations

import gzip
import importlib.resources
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.config.schema import SourceSpec
from kerastrain.data.folders import is_folder_source, read_folder
from kerastrain.data.shards import SUFFIXES, load_files
from kerastrain.data.table import Table, read_csv
from kerastrain.errors import DataError, KeyProblem

FASHION_MNIST_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                       "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def default_target(spec: SourceSpec) -> str | None:
    if spec.type in ("sklearn", "synthetic", "npy"):
        return "target"
    if spec.type == "fashion_mnist" or is_folder_source(spec):
        return "label"
    return None


def load_source(spec: SourceSpec, seed: int) -> Table:
    """The rows of `spec`; generators draw them from `seed`."""
    if spec.type in SUFFIXES and not spec.package:  # a file, or shards of files
        return load_files(spec)
    if spec.type == "csv":  # a file a package ships
        return read_csv(_package_file(spec), spec.delimiter or ",")
    if is_folder_source(spec):
        return read_folder(spec)
    if spec.type == "sklearn":
        return _sklearn(spec.name)
    if spec.type == "synthetic":
        return _synthetic(spec, seed)
    return load_fashion_mnist()


def _package_file(spec: SourceSpec) -> Path:
    """A data file an installed package ships (`package`, `path` inside it)."""
    try:
        return Path(str(importlib.resources.files(spec.package) / spec.path))
    except ModuleNotFoundError:
        raise DataError(f"no installed package {spec.package!r} to read {spec.path} from: "
                        f"pip install {spec.package}.") from None


def load_configured_source(spec: SourceSpec, seed: int) -> Table:
    """`load_source` for a config: a data file that cannot be used (missing, empty, wrongly
    delimited) is a problem of the config key that names it, so the message gives that
    key's line as well as the file."""
    try:
        return load_source(spec, seed)
    except DataError as exc:
        if spec.path is None:
            raise
        key = "target_path" if spec.target_path and str(exc).startswith(spec.target_path) \
            else "path"
        raise KeyProblem(("data", "source", key), str(exc)) from None


def _bunch(name: str) -> Any:
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")()


def _class_names(name: str, bunch: Any) -> np.ndarray | None:
    """A bundled set's class names, code i being names[i]; None where the table keeps the
    codes (digits: its names are the digits) or there are no classes (diabetes)."""
    if "target_names" not in bunch or name in ("diabetes", "digits"):
        return None
    return np.asarray(bunch.target_names).astype(object)


def _sklearn(name: str) -> Table:
    bunch = _bunch(name)
    columns = {str(f): bunch.data[:, j].astype(np.float64)
               for j, f in enumerate(bunch.feature_names)}
    names, target = _class_names(name, bunch), bunch.target
    if names is not None:
        target = names[target]
    elif name == "digits":
        target = target.astype(np.int64)
    columns["target"] = target
    return Table(columns, f"scikit-learn {name}")


def bundled_class_names(spec: SourceSpec) -> list[str] | None:
    """The class names of a scikit-learn bundled set whose labels a run holds as names
    (`class_0`, `setosa`), in scikit-learn's order of the codes; None for another source."""
    if spec.type != "sklearn":
        return None
    names = _class_names(str(spec.name), _bunch(str(spec.name)))
    return None if names is None else [str(n) for n in names]


def with_class_names(table: Table, target: str, names: list[str]) -> Table:
    """`table` whose `target` holds a bundled set's integer codes (0 .. len(names) - 1, as
    scikit-learn ships it, e.g. exported with `as_frame=True`) with those codes written
    as the class names; any other column of labels as it is."""
    values = table.columns.get(target)
    if values is None or values.ndim != 1 or values.dtype.kind not in "iuf" or not len(values):
        return table
    if not (np.all(np.mod(values, 1) == 0) and values.min() >= 0 and
            values.max() < len(names)):
        return table
    named = np.asarray(names, dtype=object)[values.astype(np.int64)]
    return replace(table, columns={**table.columns, target: named})


def _synthetic(spec: SourceSpec, seed: int) -> Table:
    from sklearn import datasets

    rng = np.random.default_rng(seed)
    if spec.name == "gaussian_clouds":
        # The seed's two point clouds: 1000 points per class, means (0, 3) and (3, 0).
        per_class = spec.n_samples or 1000
        cov = [[1.0, 0.5], [0.5, 1.0]]
        negative = rng.multivariate_normal([0.0, 3.0], cov, size=per_class)
        positive = rng.multivariate_normal([3.0, 0.0], cov, size=per_class)
        x = np.vstack([negative, positive])
        y = np.concatenate([np.zeros(per_class), np.ones(per_class)]).astype(np.int64)
        return Table({"x0": x[:, 0], "x1": x[:, 1], "target": y}, "synthetic gaussian_clouds")
    if spec.name == "tickets":
        return _tickets(spec, rng)
    n_samples = spec.n_samples or 1000
    n_features = spec.n_features or 20
    state = int(rng.integers(2**31))
    if spec.name == "classification":
        x, y = datasets.make_classification(
            n_samples=n_samples, n_features=n_features, n_informative=min(n_features, 5),
            n_redundant=0, n_classes=spec.n_classes or 2, flip_y=spec.noise or 0.01,
            random_state=state)
    else:
        x, y = datasets.make_regression(n_samples=n_samples, n_features=n_features,
                                        noise=spec.noise or 0.0, random_state=state)
    columns = {f"x{j}": x[:, j] for j in range(n_features)}
    columns["target"] = y
    return Table(columns, f"synthetic {spec.name}")


TICKET_TAGS = 100


def _tickets(spec: SourceSpec, rng: np.random.Generator) -> Table:
    """Deep Learning with Python's support tickets (ch. 7), as arrays of its shapes: binary
    bag-of-words `title` and `text_body` (n_features words, 10,000 in the book), 100 binary
    `tags`; targets `priority` in [0, 1] and `department` (n_classes of them, 4 in the
    book). Unlike the book's pure noise, the targets depend on the inputs (priority on
    the first ten tags, department on the block of the vocabulary its words fall in most,
    and most tickets carry a tag for their department), so a model has something to
    learn."""
    n = spec.n_samples or 1280
    vocabulary = spec.n_features or 10_000
    departments = spec.n_classes or 4
    title = (rng.random((n, vocabulary)) < 0.01).astype(np.float32)
    text_body = (rng.random((n, vocabulary)) < 0.02).astype(np.float32)
    tags = (rng.random((n, TICKET_TAGS)) < 0.1).astype(np.float32)
    priority = (tags[:, :10].sum(axis=1) + rng.random(n)) / 11.0
    blocks = np.array_split(np.arange(vocabulary), departments)
    busy = np.stack([title[:, b].sum(axis=1) + text_body[:, b].sum(axis=1) for b in blocks], 1)
    department = np.argmax(busy + rng.random(busy.shape) * 0.5, axis=1).astype(np.int64)
    hint = rng.random(n) < 0.7  # the last tags name the department, on most tickets
    tags[np.flatnonzero(hint), TICKET_TAGS - departments + department[hint]] = 1.0
    return Table({"title": title, "text_body": text_body, "tags": tags,
                  "priority": priority.astype(np.float32), "department": department},
                 "synthetic tickets")


def keras_cache_dir() -> Path:
    """Where Keras keeps Fashion-MNIST: $KERAS_HOME/datasets/fashion-mnist (or ~/.keras)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "fashion-mnist"


def _read_idx(path: Path, offset: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            return np.frombuffer(handle.read(), np.uint8, offset=offset)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a readable Fashion-MNIST file: {exc}") from None


def _download_fashion_mnist() -> None:
    try:
        _keras.keras().datasets.fashion_mnist.load_data()
    except Exception as exc:  # Keras raises whatever the network layer raised
        raise DataError(
            f"Fashion-MNIST is not in the Keras cache ({keras_cache_dir()}) and could not be "
            f"downloaded: {type(exc).__name__}: {exc}. Run once with network access, or copy "
            f"{', '.join(FASHION_MNIST_FILES)} there.") from None


def load_fashion_mnist() -> Table:
    """Keras's Fashion-MNIST (train then test rows), read from Keras's download cache."""
    folder = keras_cache_dir()
    if not all((folder / f).exists() for f in FASHION_MNIST_FILES):
        _download_fashion_mnist()
    labels, images = [], []
    for part in ("train", "t10k"):
        y = _read_idx(folder / f"{part}-labels-idx1-ubyte.gz", 8)
        x = _read_idx(folder / f"{part}-images-idx3-ubyte.gz", 16)
        if x.size != len(y) * 28 * 28:
            raise DataError(f"{folder}: {part} images and labels do not match in count.")
        labels.append(y)
        images.append(x.reshape(len(y), 28, 28))
    names = np.asarray(FASHION_MNIST_CLASSES, dtype=object)
    return Table({"image": np.concatenate(images), "label": names[np.concatenate(labels)]},
                 f"Fashion-MNIST ({folder})")

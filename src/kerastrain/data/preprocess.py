"""Preprocessing fitted on training rows only, saved as JSON, applied identically later.

Features: numeric columns are rescaled and standardized or min-max scaled; string (or
declared categorical) columns are one-hot or integer encoded; N-D array columns (images)
are scaled with one mean/std (or min/max) over all their values. Targets: class labels
are encoded to integers (or one-hot), regression targets are cast to float32.

Large arrays (60k x 784 images) pass through without float64 copies: statistics are
accumulated in float64 over chunks of rows, and `transform_x` writes straight into the
one float32 array the model reads, again chunk by chunk, with the same float64
arithmetic as a whole-array computation (so the values are bit-for-bit those of
`((x.astype(float64) * rescale - mean) / std).astype(float32)`); see `data/chunked.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerastrain.config.schema import PreprocessingSpec
from kerastrain.data import chunked
from kerastrain.data.table import Table
from kerastrain.data.values import (
    check_categories,
    check_column,
    label_order,
    label_value,
    labels,
    mostly_numeric,
)
from kerastrain.errors import DataError

FORMAT_VERSION = 1


@dataclass
class Preprocessor:
    """Fitted statistics for every feature column and the target encoding."""

    features: list[dict[str, Any]]
    target: dict[str, Any] | None
    rescale: float | None = None
    input_shape: list[int] = field(default_factory=list)

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, table: Table, feature_names: list[str], target_name: str | None,
            train_rows: np.ndarray, spec: PreprocessingSpec, task: str,
            target_encoding: str) -> Preprocessor:
        categorical = {table.resolve(c) for c in spec.categorical_columns}
        features = []
        for name in feature_names:
            values = table.columns[name]
            if values.ndim > 1:
                if values.dtype.kind not in "iufb":
                    raise DataError(f"{table.origin}: array {name!r} must be numeric, "
                                    f"not {values.dtype}.")
                check_column(table, name, numeric=True)
                features.append(cls._fit_numeric(name, values, train_rows, spec, "array"))
            elif values.dtype == object or name in categorical:
                if values.dtype == object and name not in categorical and \
                        table.numeric_hint.get(name) is False and mostly_numeric(values):
                    check_column(table, name, numeric=True)
                check_column(table, name, numeric=False)
                train = values[train_rows]
                categories = sorted(labels(train), key=label_order)
                features.append({"name": name, "kind": "categorical", "dtype": "string"
                                 if values.dtype == object else "number",
                                 "encoding": spec.categorical, "categories": categories})
            else:
                check_column(table, name, numeric=True)
                features.append(cls._fit_numeric(name, values, train_rows, spec, "numeric"))
        target = None
        if target_name is not None:
            target = cls._fit_target(table, target_name, train_rows, task, target_encoding)
        pre = cls(features, target, spec.rescale)
        pre.input_shape = list(pre.transform_x(table, train_rows[:1]).shape[1:])
        return pre

    @classmethod
    def fit_target(cls, table: Table, target_name: str, train_rows: np.ndarray, task: str,
                   target_encoding: str) -> Preprocessor:
        """A preprocessor of one target and no features: one output of a graph model."""
        return cls([], cls._fit_target(table, target_name, train_rows, task, target_encoding))

    @staticmethod
    def _fit_numeric(name: str, values: np.ndarray, train_rows: np.ndarray,
                     spec: PreprocessingSpec, kind: str) -> dict[str, Any]:
        """Scaling statistics of `values[train_rows]` (times `rescale`) over all its values,
        accumulated in float64 chunk by chunk: no copy of the training rows is made."""
        entry: dict[str, Any] = {"name": name, "kind": kind, "scale": spec.numeric}
        if kind == "array":
            entry["shape"] = list(values.shape[1:])
        factor = spec.rescale or 1.0
        if spec.numeric == "standardize":
            mean, std = chunked.mean_std(values, train_rows, factor)
            entry.update(mean=mean, std=std if std > 0 else 1.0)
        elif spec.numeric == "minmax":
            low, high = chunked.min_max(values, train_rows, factor)
            entry.update(min=low, max=high if high > low else low + 1.0)
        return entry

    @staticmethod
    def _fit_target(table: Table, name: str, train_rows: np.ndarray, task: str,
                    encoding: str) -> dict[str, Any]:
        values = table.columns[name]
        check_column(table, name, numeric=task == "regression")
        if task == "regression":
            return {"name": name, "task": "regression"}
        classes = sorted(labels(values[train_rows]), key=label_order)
        if len(classes) < 2:
            raise DataError(f"{table.origin}: the target {name!r} has a single class "
                            f"({classes[0]!r}) in the training rows; a classifier needs two.")
        return {"name": name, "task": "classification", "classes": classes,
                "encoding": encoding}

    # -- applying ----------------------------------------------------------------------------
    @property
    def task(self) -> str | None:
        return self.target["task"] if self.target else None

    @property
    def classes(self) -> list[Any]:
        return list(self.target.get("classes", [])) if self.target else []

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def used_columns(self) -> list[str]:
        """Every column the model reads, features then target (to fingerprint the data)."""
        return self.feature_names + ([self.target["name"]] if self.target else [])

    def check_columns(self, table: Table, with_target: bool) -> None:
        """DataError naming the first column the table lacks."""
        needed = self.feature_names + ([self.target["name"]] if with_target and self.target
                                       else [])
        for name in needed:
            table.column(name, "column (the model was trained with it)")

    def check_values(self, table: Table, with_target: bool) -> None:
        """DataError for the first value of new rows (evaluate, predict) that the fitted
        preprocessing cannot take as training took it: a missing value, text or an infinite
        number in a numeric column, an array of another shape, a category or (checked by
        `transform_y`) a label never seen in training."""
        for entry in self.features:
            name = entry["name"]
            if entry["kind"] == "categorical":
                check_column(table, name, numeric=False)
                check_categories(table, entry)
                continue
            values = table.columns[name]
            if entry["kind"] == "array" and (values.dtype.kind not in "iufb" or
                                             list(values.shape[1:]) != entry["shape"]):
                raise DataError(f"{table.origin}: array {name!r} holds {values.dtype} values of "
                                f"shape {list(values.shape[1:])} per row; the model was trained "
                                f"on numbers of shape {entry['shape']}.")
            if entry["kind"] == "numeric" and values.ndim > 1:
                raise DataError(f"{table.origin}: column {name!r} holds arrays of shape "
                                f"{list(values.shape[1:])} per row; the model was trained on "
                                "one number per row.")
            check_column(table, name, numeric=True)
        if with_target and self.target is not None:
            check_column(table, self.target["name"], numeric=self.task == "regression")

    def transform_x(self, table: Table, rows: np.ndarray | None = None) -> np.ndarray:
        """The model's input for `rows` (all rows by default): one float32 array, of shape
        (rows, features), or the array's own shape for a single N-D array feature.

        It is built in place, with no float64 copy. A single float32 feature that needs no
        scaling is returned without any copy where `rows` is all rows or a contiguous
        range: a read-only view of the table's array, which is never modified."""
        rows = None if rows is None else np.asarray(rows)
        n = table.n_rows if rows is None else len(rows)
        columns = [table.columns[entry["name"]] for entry in self.features]
        if len(self.features) == 1 and self._is_identity(self.features[0], columns[0]):
            return chunked.select_rows(columns[0], rows, shape=columns[0].ndim > 2)
        widths = [self._width(entry, values)
                  for entry, values in zip(self.features, columns, strict=True)]
        out = np.empty((n, sum(widths)), dtype=np.float32)
        start = 0
        for entry, values, width in zip(self.features, columns, widths, strict=True):
            block = out[:, start:start + width]
            start += width
            if entry["kind"] == "categorical":
                block[...] = self._encode_categorical(
                    entry, values if rows is None else values[rows])
            else:
                self._fill_numeric(entry, values, rows, block)
        if len(columns) == 1 and columns[0].ndim > 2:
            return out.reshape((n, *columns[0].shape[1:]))
        return out

    def _is_identity(self, entry: dict[str, Any], values: np.ndarray) -> bool:
        """True when a numeric entry leaves float32 values as they are."""
        return (entry["kind"] != "categorical" and entry["scale"] not in ("standardize",
                "minmax") and (self.rescale or 1.0) == 1.0 and values.dtype == np.float32)

    @staticmethod
    def _width(entry: dict[str, Any], values: np.ndarray) -> int:
        """How many model-input columns a feature takes."""
        if entry["kind"] != "categorical":
            return int(np.prod(values.shape[1:], dtype=np.int64))
        return len(entry["categories"]) if entry["encoding"] == "one_hot" else 1

    def _fill_numeric(self, entry: dict[str, Any], values: np.ndarray,
                      rows: np.ndarray | None, block: np.ndarray) -> None:
        """Write the scaled `values[rows]` into `block` (a float32 (rows, width) view), chunk
        by chunk through one reused float64 buffer."""
        factor = self.rescale or 1.0
        scale = entry["scale"]
        if scale == "standardize":
            shift, divisor = entry["mean"], entry["std"]
        elif scale == "minmax":
            shift, divisor = entry["min"], entry["max"] - entry["min"]
        elif factor == 1.0:
            for start, stop, chunk in chunked.row_chunks(values, rows):
                block[start:stop] = chunk          # a cast to float32, if any, on the way
            return
        else:
            shift, divisor = None, None
        for start, stop, x in chunked.float64_chunks(values, rows, factor):
            if shift is not None:
                x -= shift
                x /= divisor
            block[start:stop] = x

    @staticmethod
    def _encode_categorical(entry: dict[str, Any], values: np.ndarray) -> np.ndarray:
        index = {c: i for i, c in enumerate(entry["categories"])}
        codes = np.array([index.get(label_value(v), -1) for v in values], dtype=np.int64)
        if entry["encoding"] == "integer":
            codes[codes < 0] = len(index)  # one out-of-vocabulary code for unseen categories
            return codes.astype(np.float32).reshape(-1, 1)
        one_hot = np.zeros((len(values), len(index)), dtype=np.float32)
        seen = codes >= 0
        one_hot[np.flatnonzero(seen), codes[seen]] = 1.0
        return one_hot

    def transform_y(self, table: Table, rows: np.ndarray | None = None,
                    where: str = "these rows") -> np.ndarray:
        values = table.columns[self.target["name"]]
        values = values if rows is None else values[rows]
        if self.task == "regression":
            return values.astype(np.float32, copy=rows is None)
        index = {c: i for i, c in enumerate(self.classes)}
        codes = _label_codes(values, index)
        if (codes < 0).any():
            bad = values[int(np.flatnonzero(codes < 0)[0])]
            raise DataError(f"{table.origin}: the label {label_value(bad)!r} in {where} is not "
                            f"among the classes the model was trained on: {self.classes}.")
        if self.target["encoding"] == "one_hot":
            return np.eye(len(index), dtype=np.float32)[codes]
        return codes

    def decode(self, outputs: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """Class labels and per-class scores from a classifier's outputs."""
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if outputs.shape[1] == 1:
            positive = outputs[:, 0]
            scores = np.stack([1.0 - positive, positive], axis=1)
        else:
            scores = outputs
        labels = [self.classes[i] for i in np.argmax(scores, axis=1)]
        return labels, scores

    # -- saving ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "features": self.features,
                "target": self.target, "rescale": self.rescale, "input_shape": self.input_shape}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessor:
        return cls(data["features"], data.get("target"), data.get("rescale"),
                   list(data.get("input_shape", [])))


def _label_codes(values: np.ndarray, index: dict[Any, int]) -> np.ndarray:
    """The class index of every label (-1 for an unknown one): each distinct label is looked
    up once."""
    try:
        distinct, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # labels of mixed types: no order to sort them by
        return np.array([index.get(label_value(v), -1) for v in values], dtype=np.int64)
    lookup = np.array([index.get(label_value(v), -1) for v in distinct], dtype=np.int64)
    return lookup[inverse.reshape(-1)]

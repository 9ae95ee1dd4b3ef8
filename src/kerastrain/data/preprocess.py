"""Preprocessing fitted on training rows only, saved as JSON, applied identically later.

Features: every column gets a kind (`data/kinds.py`: inferred from the training rows or
set in `data.columns`) and is fitted on the fold's training rows (`data/columns.py`):
numbers imputed and scaled, categories looked up (unseen and rare ones in an 'other'
bucket), dates split into parts, text vectorised; identifiers are dropped, said.
Applying is one implementation, the Keras layers of `data/layers.py` built from the
fitted entries, run over the model's input in large batches (once per fold). Targets:
class labels are encoded to integers (or one-hot); a regression target far from
standard scale gets a `TargetScale` on the model's output (`scale`).

Large arrays (60k x 784 images) pass through without float64 copies of all their rows:
statistics are accumulated in float64 over chunks of rows (`data/chunked.py`), and the
layer computes in float64 on a batch at a time, writing into the one float32 array the
model reads, so the values are bit-for-bit those of
`((x.astype(float64) * rescale - mean) / std).astype(float32)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerastrain.config.schema import ColumnSpec, PreprocessingSpec
from kerastrain.data import chunked, columns, kinds, layers
from kerastrain.data.newrows import row_notes
from kerastrain.data.table import Table
from kerastrain.data.values import (
    check_column,
    label_order,
    label_value,
    labels,
)
from kerastrain.errors import DataError

FORMAT_VERSION = 2
SCALAR = ("numeric", "binary")


def _scalar(entry: dict[str, Any]) -> bool:
    """A feature of one number per row: applied by the shared `NumericColumns`."""
    return entry["kind"] in SCALAR and "scale" in entry


@dataclass
class Preprocessor:
    """Fitted statistics for every feature column and the target encoding."""

    features: list[dict[str, Any]]
    target: dict[str, Any] | None
    rescale: float | None = None
    input_shape: list[int] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    missing_values: list[str] = field(default_factory=lambda: list(
        PreprocessingSpec().missing_values))
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)   # every input column, dropped ones too
    _layers: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, table: Table, feature_names: list[str], target_name: str | None,
            train_rows: np.ndarray, spec: PreprocessingSpec, task: str,
            target_encoding: str, column_specs: dict[str, ColumnSpec] | None = None,
            ) -> Preprocessor:
        """Every feature's kind and fitted state from `train_rows`; all columns' problems
        in one `DataError`."""
        specs = column_specs or {}
        marks = kinds.markers(spec)
        categorical = {table.resolve(c) for c in spec.categorical_columns}
        features, dropped, problems, notes = [], [], [], []
        for name in feature_names:
            values = table.columns[name]
            choice = kinds.infer(name, values if values.ndim > 1 else values[train_rows],
                                 marks, specs.get(name), categorical)
            notes += choice.notes
            entry, found = columns.fit_column(table, choice, train_rows, spec,
                                               specs.get(name), marks)
            problems += found
            if choice.kind in kinds.DROPPED:
                dropped.append({"name": name, "kind": choice.kind, "reason": choice.reason})
            elif entry:
                features.append(entry)
        if problems:
            raise DataError(f"{table.origin}: " + "\n  ".join(problems))
        if not features:
            raise DataError(f"{table.origin}: no feature column is left: "
                            + "; ".join(f"{d['name']}: {d['reason']}" for d in dropped))
        target = None
        if target_name is not None:
            target = cls._fit_target(table, target_name, train_rows, task, target_encoding,
                                     spec.scale_target)
        pre = cls(features, target, spec.rescale, dropped=dropped,
                  missing_values=list(spec.missing_values), notes=notes,
                  columns=list(feature_names))
        pre.input_shape = pre._shape(table)
        return pre

    def _shape(self, table: Table) -> list[int]:
        first = table.columns[self.features[0]["name"]]
        if len(self.features) == 1 and first.ndim > 2:
            return list(first.shape[1:])
        return [sum(columns.width(entry) for entry in self.features)]

    @classmethod
    def fit_target(cls, table: Table, target_name: str, train_rows: np.ndarray, task: str,
                   target_encoding: str) -> Preprocessor:
        """A preprocessor of one target and no features: one output of a graph model."""
        return cls([], cls._fit_target(table, target_name, train_rows, task, target_encoding,
                                       "none"))

    @staticmethod
    def _fit_numeric(name: str, values: np.ndarray, train_rows: np.ndarray,
                     spec: PreprocessingSpec, kind: str) -> dict[str, Any]:
        return columns.fit_numeric(name, values, train_rows, spec, kind)

    @staticmethod
    def _fit_target(table: Table, name: str, train_rows: np.ndarray, task: str,
                    encoding: str, scale: str) -> dict[str, Any]:
        """The classes (or, for regression, the scale the network learns in) of the
        training rows' target; rows without a target were left out before."""
        values = table.columns[name][train_rows]
        check_column(Table({name: values}, table.origin), name, task == "regression")
        if task == "regression":
            target: dict[str, Any] = {"name": name, "task": "regression"}
            mean, std = float(np.mean(values)), float(np.std(values))
            if scale == "auto" and std > 0 and not (abs(mean) <= 1 and 0.5 <= std <= 2):
                target["scale"] = {"mean": mean, "std": std}
            return target
        classes = sorted(labels(values), key=label_order)
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
        """Every column the model was given, features (dropped ones too) then target: what
        the data's fingerprint covers."""
        return (self.columns or self.feature_names) + ([self.target["name"]] if self.target
                                                       else [])

    def report(self) -> list[dict[str, Any]]:
        """Each column's kind, encoding, input width and why: what validate and run.json show."""
        return columns.report(self.features, self.dropped)

    def check_columns(self, table: Table, with_target: bool) -> None:
        """DataError naming the first column the table lacks."""
        needed = self.feature_names + ([self.target["name"]] if with_target and self.target
                                       else [])
        for name in needed:
            table.column(name, "column (the model was trained with it)")

    def check_values(self, table: Table, with_target: bool) -> list[str]:
        """What new rows (evaluate, predict) hold that training did not, as notes (missing
        values filled, categories never seen put in 'other'); a `DataError` for what the
        layers cannot take (an array of another shape, an infinite number, text or a
        missing value in a target)."""
        notes, problems = row_notes(self, table)
        if with_target and self.target is not None:
            try:
                check_column(table, self.target["name"], numeric=self.task == "regression")
            except DataError as exc:
                problems.append(str(exc))
        if problems:
            raise DataError("\n  ".join(problems))
        return notes

    def transform_x(self, table: Table, rows: np.ndarray | None = None) -> np.ndarray:
        """The model's input for `rows` (all rows by default): one float32 array, of shape
        (rows, features), or the array's own shape for a single N-D array feature; each
        feature through its fitted layer, in large batches.

        A single float32 feature that needs no scaling is returned without any copy where
        `rows` is all rows or a contiguous range: a read-only view of the table's array,
        which is never modified."""
        rows = None if rows is None else np.asarray(rows)
        n = table.n_rows if rows is None else len(rows)
        values = [table.columns[entry["name"]] for entry in self.features]
        if len(self.features) == 1 and self._is_identity(self.features[0], values[0]):
            return chunked.select_rows(values[0], rows, shape=values[0].ndim > 2)
        widths = [columns.width(entry) for entry in self.features]
        starts = np.cumsum([0, *widths[:-1]])
        out = np.empty((n, sum(widths)), dtype=np.float32)
        scalars = [i for i, entry in enumerate(self.features) if _scalar(entry)]
        if scalars:
            self._apply_scalars(values, rows, scalars, starts, out)
        for i, entry in enumerate(self.features):
            if i not in scalars:
                layers.apply(self._layer(entry), values[i], rows,
                             out[:, starts[i]:starts[i] + widths[i]],
                             kinds.decoder(entry["kind"], self._marks))
        if len(values) == 1 and values[0].ndim > 2:
            return out.reshape((n, *values[0].shape[1:]))
        return out

    def _apply_scalars(self, values: list[np.ndarray], rows: np.ndarray | None,
                       scalars: list[int], starts: np.ndarray, out: np.ndarray) -> None:
        """The one-number features side by side through one `NumericColumns`, each
        output column (and missing indicator) written to its place."""
        entries = [self.features[i] for i in scalars]
        key = "numeric:" + ",".join(e["name"] for e in entries)
        if key not in self._layers:
            self._layers[key] = layers.numeric_layer(entries, self.rescale)
        n = out.shape[0]
        raw = np.empty((n, len(scalars)), dtype=np.float64)
        for j, i in enumerate(scalars):
            column = values[i] if rows is None else values[i][rows]
            raw[:, j] = kinds.as_numbers(column, self._marks)[0]
        flagged = [starts[i] + 1 for i in scalars if self.features[i].get("indicator")]
        result = np.empty((n, len(scalars) + len(flagged)), dtype=np.float32)
        layers.apply(self._layers[key], raw, None, result)
        out[:, starts[scalars]] = result[:, :len(scalars)]
        if flagged:
            out[:, flagged] = result[:, len(scalars):]

    @property
    def _marks(self) -> frozenset[str]:
        return frozenset(m.strip().lower() for m in self.missing_values)

    def _layer(self, entry: dict[str, Any]) -> Any:
        """The layer of one feature, built from its entry once."""
        if entry["name"] not in self._layers:
            self._layers[entry["name"]] = layers.numeric_layer([entry], self.rescale) \
                if entry["kind"] == "array" else layers.feature_layer(entry)
        return self._layers[entry["name"]]

    def _is_identity(self, entry: dict[str, Any], values: np.ndarray) -> bool:
        """True when an array entry leaves float32 values as they are."""
        return (entry["kind"] == "array" and entry["scale"] not in ("standardize", "minmax")
                and (self.rescale or 1.0) == 1.0 and values.dtype == np.float32)

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
                "target": self.target, "rescale": self.rescale, "input_shape": self.input_shape,
                "dropped": self.dropped, "missing_values": self.missing_values,
                "columns": self.columns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessor:
        return cls(data["features"], data.get("target"), data.get("rescale"),
                   list(data.get("input_shape", [])), list(data.get("dropped", [])),
                   list(data.get("missing_values", PreprocessingSpec().missing_values)),
                   columns=list(data.get("columns", [])))


def _label_codes(values: np.ndarray, index: dict[Any, int]) -> np.ndarray:
    """The class index of every label (-1 for an unknown one): each distinct label is looked
    up once."""
    try:
        distinct, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # labels of mixed types: no order to sort them by
        return np.array([index.get(label_value(v), -1) for v in values], dtype=np.int64)
    lookup = np.array([index.get(label_value(v), -1) for v in distinct], dtype=np.int64)
    return lookup[inverse.reshape(-1)]

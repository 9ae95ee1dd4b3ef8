"""Data for graph models: which columns feed each named input, which column is each
output's target, and one fitted preprocessing per input and per output.

Model inputs and targets are dicts keyed by the Keras input and output names, which is
how `keras.Model.fit` takes several inputs and outputs. Everything is fitted on training
rows only and saved (kind "graph") in preprocessing.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kerastrain.config.schema import DataSpec, ModelSpec, TargetSpec
from kerastrain.data.preprocess import FORMAT_VERSION, Preprocessor
from kerastrain.data.sources import default_target
from kerastrain.data.table import Table
from kerastrain.data.targets import TargetHints, infer_target_encoding, infer_task
from kerastrain.errors import KeyProblem, did_you_mean


@dataclass(frozen=True)
class OutputTarget:
    output: str
    column: str
    task: str
    encoding: str


@dataclass(frozen=True)
class GraphColumns:
    """Input name -> its columns; the outputs' targets in the model's output order."""

    inputs: dict[str, list[str]]
    targets: list[OutputTarget]

    @property
    def features(self) -> list[str]:
        return list(dict.fromkeys(c for cols in self.inputs.values() for c in cols))


def _targets(data: DataSpec, outputs: list[str], table: Table,
             hints: dict[str, TargetHints]) -> list[OutputTarget]:
    refs: dict[str, tuple[Any, tuple, TargetSpec | None]] = {}
    if data.targets is not None:
        if data.target is not None:
            raise KeyProblem(("data", "target"), "give data.targets (one per output) or "
                             "data.target, not both.")
        for name, value in data.targets.items():
            if name not in outputs:
                raise KeyProblem(("data", "targets", name), f"{name!r} is not an output."
                                 f"{did_you_mean(name, outputs)} Outputs: {', '.join(outputs)}.")
            spec = value if isinstance(value, TargetSpec) else None
            column = value.column if spec else value
            path = ("data", "targets", name) + (("column",) if spec else ())
            refs[name] = (column, path, spec)
    elif len(outputs) == 1:
        ref = data.target if data.target is not None else default_target(data.source)
        if ref is not None:
            refs[outputs[0]] = (ref, ("data", "target"), None)
    found = []
    for j, name in enumerate(outputs):
        if name not in refs:
            where = ("data", "targets") if data.targets is not None else ("model", "outputs", j)
            raise KeyProblem(where, f"output {name!r} has no target: add `{name}: <column>` under "
                             f"data.targets. Columns: {', '.join(table.names)}.")
        ref, path, spec = refs[name]
        column = table.resolve_at(ref, path)
        task = spec.task if spec and spec.task != "auto" else data.task
        encoding = (spec.target_encoding if spec and spec.target_encoding != "auto"
                    else data.target_encoding)
        task = infer_task(task, table.columns[column], hints[name])
        found.append(OutputTarget(name, column, task, infer_target_encoding(encoding,
                                                                             hints[name])))
    return found


def graph_columns(data: DataSpec, model: ModelSpec, table: Table,
                  hints: dict[str, TargetHints], steering: tuple[str, ...] = ()) -> GraphColumns:
    """The columns of every input and output, checked against the table. `hints` (per
    output) come from its loss and metrics; the `steering` columns (groups, time order)
    are never features."""
    targets = _targets(data, list(model.outputs), table, hints)
    target_columns = {t.column for t in targets}
    feeds_single = len(model.inputs) == 1 and model.inputs[0].columns is None \
        and model.inputs[0].name not in table.columns
    if data.features is not None and not feeds_single:
        raise KeyProblem(("data", "features"), "a graph model takes its columns from "
                         "model.inputs (columns: [...]); data.features only feeds a single "
                         "input that names none. Move the columns to the input.")
    excluded = {table.resolve_at(ref, ("data", "exclude", i))
                for i, ref in enumerate(data.exclude)}
    inputs: dict[str, list[str]] = {}
    for i, inp in enumerate(model.inputs):
        path = ("model", "inputs", i)
        if inp.columns is not None:
            columns = [table.resolve_at(ref, path + ("columns", k))
                       for k, ref in enumerate(inp.columns)]
        elif inp.name in table.columns:
            columns = [inp.name]
        elif len(model.inputs) == 1:
            refs = data.features
            columns = ([table.resolve_at(r, ("data", "features", k)) for k, r in enumerate(refs)]
                       if refs is not None else
                       [n for n in table.names if n not in target_columns
                        and n not in steering and n not in excluded])
        else:
            raise KeyProblem(path, f"input {inp.name!r} names no columns and the data has no "
                             f"column of that name: add columns: [...]. Columns: "
                             f"{', '.join(table.names)}.")
        for k, column in enumerate(columns):
            where = path + (("columns", k) if inp.columns else ())
            if column in target_columns:
                raise KeyProblem(where, f"{column!r} is a target; an input cannot also read it.")
            if column in steering:
                raise KeyProblem(where, f"{column!r} steers the splits (validation.groups or "
                                 "time_order): a feature must not also be one (the model would "
                                 "learn the split). Remove one of them.")
        if not columns:
            raise KeyProblem(path, f"input {inp.name!r} has no columns left.")
        inputs[inp.name] = columns
    return GraphColumns(inputs, targets)


@dataclass
class GraphPreprocessor:
    """One `Preprocessor` per input (features only) and per output (target only)."""

    inputs: dict[str, Preprocessor]
    outputs: dict[str, Preprocessor]

    @classmethod
    def fit(cls, table: Table, columns: GraphColumns, train_rows: np.ndarray,
            spec: Any, column_specs: dict[str, Any] | None = None) -> GraphPreprocessor:
        inputs = {name: Preprocessor.fit(table, cols, None, train_rows, spec, "regression",
                                         "integer", column_specs)
                  for name, cols in columns.inputs.items()}
        outputs = {t.output: Preprocessor.fit_target(table, t.column, train_rows, t.task,
                                                     t.encoding)
                   for t in columns.targets}
        return cls(inputs, outputs)

    @property
    def notes(self) -> list[str]:
        return list(dict.fromkeys(n for pre in self.inputs.values() for n in pre.notes))

    def report(self) -> list[dict[str, Any]]:
        """Each input's columns: kind, encoding and why (`Preprocessor.report`)."""
        return [{"input": name, **row} for name, pre in self.inputs.items()
                for row in pre.report()]

    @property
    def input_shape(self) -> dict[str, list[int]]:
        return {name: pre.input_shape for name, pre in self.inputs.items()}

    @property
    def features(self) -> list[dict[str, Any]]:
        return [entry for pre in self.inputs.values() for entry in pre.features]

    @property
    def feature_names(self) -> list[str]:
        return list(dict.fromkeys(f["name"] for f in self.features))

    @property
    def target(self) -> dict[str, Any] | None:
        """The first output's target (what a one-target caller asks for)."""
        return next(iter(self.outputs.values())).target if self.outputs else None

    @property
    def classes(self) -> list[Any]:
        """The first output's classes (what `class_weight` of a one-output model uses)."""
        return next(iter(self.outputs.values())).classes if self.outputs else []

    @property
    def output_classes(self) -> dict[str, list[Any]]:
        return {name: pre.classes for name, pre in self.outputs.items() if pre.classes}

    @property
    def used_columns(self) -> list[str]:
        inputs = [c for pre in self.inputs.values() for c in pre.columns or pre.feature_names]
        targets = [pre.target["name"] for pre in self.outputs.values()]
        return list(dict.fromkeys(inputs + targets))

    def check_columns(self, table: Table, with_target: bool) -> None:
        for pre in self.inputs.values():
            pre.check_columns(table, with_target=False)
        if with_target:
            for pre in self.outputs.values():
                pre.check_columns(table, with_target=True)

    def check_values(self, table: Table, with_target: bool) -> list[str]:
        """Each input's (and with `with_target`, each output's) `Preprocessor.check_values`:
        their notes, once each."""
        notes = [n for pre in self.inputs.values()
                 for n in pre.check_values(table, with_target=False)]
        if with_target:
            notes += [n for pre in self.outputs.values()
                      for n in pre.check_values(table, with_target=True)]
        return list(dict.fromkeys(notes))

    def transform_x(self, table: Table, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {name: pre.transform_x(table, rows) for name, pre in self.inputs.items()}

    def transform_y(self, table: Table, rows: np.ndarray | None = None,
                    where: str = "these rows") -> np.ndarray | dict[str, np.ndarray]:
        """Targets by output name; one output's target alone (Keras takes no dict then)."""
        y = {name: pre.transform_y(table, rows, where) for name, pre in self.outputs.items()}
        return next(iter(y.values())) if len(y) == 1 else y

    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "kind": "graph",
                "inputs": {k: v.to_json() for k, v in self.inputs.items()},
                "outputs": {k: v.to_json() for k, v in self.outputs.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphPreprocessor:
        return cls({k: Preprocessor.from_json(v) for k, v in data["inputs"].items()},
                   {k: Preprocessor.from_json(v) for k, v in data["outputs"].items()})


def load_preprocessor(data: dict[str, Any]) -> Preprocessor | GraphPreprocessor:
    """The preprocessing saved in a run's preprocessing.json, of either kind."""
    if data.get("kind") == "graph":
        return GraphPreprocessor.from_json(data)
    return Preprocessor.from_json(data)

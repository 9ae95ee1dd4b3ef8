"""The checks `fit` and `validate` share, in order: Keras names, data, splits, and a model
built and compiled on the real input shape. Each stage reports problems against the
config key (file and line) they came from."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain.config import LoadedConfig
from kerastrain.data.graphdata import GraphColumns, GraphPreprocessor, graph_columns
from kerastrain.data.imagestream import image_input
from kerastrain.data.kinds import usable_rows
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.presplit import check_parts, load_parts, split_parts
from kerastrain.data.sources import default_target
from kerastrain.data.splits import SplitPlan
from kerastrain.data.streamed import STREAM_ROWS, RowStream, hold, is_streamed
from kerastrain.data.table import Table, fingerprint_columns
from kerastrain.data.targets import TargetHints, infer_target_encoding, infer_task
from kerastrain.data.values import check_column
from kerastrain.errors import ConfigError, KeyProblem
from kerastrain.models.build import target_hints
from kerastrain.models.graph import check_compile_outputs, graph_order
from kerastrain.models.lossfit import continuous_problem
from kerastrain.plugins import import_plugins
from kerastrain.registry import create_object


def _per_output(value: Any, key: str) -> list[tuple[Any, tuple]]:
    """(spec, path) of each entry of a compile field, flat or per output."""
    if isinstance(value, dict):
        return [(spec, ("compile", key, name)) for name, spec in value.items()]
    return [(value, ("compile", key))]


def _metric_specs(value: list | dict, key: str) -> list[tuple[Any, tuple]]:
    groups = value.items() if isinstance(value, dict) else [(None, value)]
    return [(m, ("compile", key) + ((name,) if name is not None else ()) + (i,))
            for name, specs in groups for i, m in enumerate(specs)]


def check_names(loaded: LoadedConfig) -> None:
    """The plugins imported, then every Keras name and constructor argument in the config
    and the structure of a graph model, all problems at once."""
    cfg = loaded.config
    with loaded.at_keys():
        import_plugins(cfg.plugins, [Path(p) for p in cfg.plugin_path or []])
    model = cfg.model
    wanted: list[tuple[str, Any, tuple]] = (
        [("layers", layer, ("model", "layers", i)) for i, layer in enumerate(model.layers)]
        if not model.is_graph else
        [("layers", node, ("model", "nodes", i)) for i, node in enumerate(model.nodes)])
    wanted += [("optimizers", cfg.compile.optimizer, ("compile", "optimizer"))]
    wanted += [("losses", spec, path) for spec, path in _per_output(cfg.compile.loss, "loss")]
    wanted += [("metrics", m, path) for m, path in _metric_specs(cfg.compile.metrics, "metrics")]
    wanted += [("metrics", m, path)
               for m, path in _metric_specs(cfg.compile.weighted_metrics, "weighted_metrics")]
    wanted += [("callbacks", c, ("callbacks", i)) for i, c in enumerate(cfg.callbacks)]
    issues = []
    try:
        _check_structure(cfg)
    except KeyProblem as exc:
        issues.append(loaded.issue(exc.path, exc.message, exc.hint))
    for kind, spec, path in wanted:
        try:
            create_object(kind, spec, path, build=False)
        except KeyProblem as exc:
            issues.append(loaded.issue(exc.path, exc.message, exc.hint))
    if issues:
        raise ConfigError(issues)


def _check_structure(cfg: Any) -> None:
    """A graph's structure, per-output compile fields, and `fit` arguments that Keras does
    not take for several outputs."""
    if cfg.model.is_graph:
        graph_order(cfg.model)
    check_compile_outputs(cfg.model, cfg.compile)
    if cfg.model.is_graph and len(cfg.model.outputs) > 1 and cfg.training.class_weight:
        raise KeyProblem(("training", "class_weight"), "Keras takes no class_weight for a model "
                         "with several outputs; remove it (or weight the losses with "
                         "compile.loss_weights).")


@dataclass
class Experiment:
    """The loaded data, its columns and task, and the split plan: what every fold uses."""

    loaded: LoadedConfig
    table: Table
    features: list[str]
    target: str
    task: str
    target_encoding: str
    plan: SplitPlan
    groups: np.ndarray | None = None
    graph: GraphColumns | None = None  # graph models: each input's columns, each output's target
    notes: list[str] = field(default_factory=list)   # rows left out, and why

    @property
    def seed(self) -> int:
        return int(self.loaded.config.seed)

    @property
    def used_columns(self) -> list[str]:
        """Every column the model reads: features, then the target(s)."""
        targets = [t.column for t in self.graph.targets] if self.graph else [self.target]
        return list(dict.fromkeys([*self.features, *targets]))

    def fingerprint_ahead(self) -> Future:
        """The SHA-256 of the columns the run uses (`fingerprint_columns`), hashed in a
        thread of its own: file reads and SHA-256 release the GIL, so on a second core it
        runs beside the checks (about a second of CPU for 700 MiB). `result()` waits for
        it, or raises what it raised."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="kerastrain-fingerprint")
        job = pool.submit(fingerprint_columns, self.table, self.used_columns)
        pool.shutdown(wait=False)   # its thread ends with the job
        return job

    def preprocessor(self, rows: np.ndarray) -> Preprocessor | GraphPreprocessor:
        """Preprocessing fitted on `rows` (a fold's training rows) only."""
        data = self.loaded.config.data
        if self.graph is not None:
            return GraphPreprocessor.fit(self.table, self.graph, rows, data.preprocessing,
                                         data.columns)
        return Preprocessor.fit(self.table, self.features, self.target, rows,
                                data.preprocessing, self.task, self.target_encoding,
                                data.columns)

    def arrays(self, pre: Preprocessor | GraphPreprocessor, rows: np.ndarray,
               where: str) -> tuple[Any, Any]:
        """Model inputs and targets of `rows` (dicts by input/output name for a graph); the
        inputs of many rows of a source left in its files (`stream: true`) as a
        `RowStream`, of an image folder as an `ImageStream`."""
        y = pre.transform_y(self.table, rows, where)
        stream = image_input(pre, self.table, rows) if self.graph is None else None
        if stream is not None:
            return stream, y
        if (self.graph is None and len(rows) > STREAM_ROWS
                and is_streamed(self.table, self.features)):
            return RowStream(pre, self.table, rows), y
        return pre.transform_x(self.table, rows), y


def _split_columns(loaded: LoadedConfig, table: Table) -> dict[str, str]:
    """The columns that steer splitting (`groups`, `time_order`), by key; never features."""
    spec = loaded.config.validation
    return {key: table.resolve_at(ref, ("validation", key))
            for key, ref in (("groups", spec.groups), ("time_order", spec.time_order))
            if ref is not None and not isinstance(ref, bool)}


def _columns(loaded: LoadedConfig, table: Table) -> tuple[list[str], str]:
    data = loaded.config.data
    target_ref = data.target if data.target is not None else default_target(data.source)
    if target_ref is None:
        raise KeyProblem(("data", "target"), f"name the target column; {table.origin} has "
                                             f"columns {', '.join(table.names)}.")
    target = table.resolve_at(target_ref, ("data", "target"))
    steering = _split_columns(loaded, table)
    for key, name in steering.items():
        if name == target:
            raise KeyProblem(("validation", key), f"{name!r} is the target; it cannot also "
                             f"steer the splits as validation.{key}.")
    for name in data.columns:
        table.resolve_at(name, ("data", "columns", name))
    excluded = {table.resolve_at(ref, ("data", "exclude", i)) for i, ref in enumerate(data.exclude)}
    if data.features is None:
        return [n for n in table.names if n != target and n not in steering.values()
                and n not in excluded], target
    features = []
    for i, ref in enumerate(data.features):
        name = table.resolve_at(ref, ("data", "features", i))
        if name == target:
            raise KeyProblem(("data", "features", i), f"{name!r} is the target; a feature "
                                                      "cannot also be the target.")
        for key, column in steering.items():
            if name == column:
                raise KeyProblem(("data", "features", i), f"{name!r} is validation.{key}: a "
                                 "column that steers the splits must not also be a feature "
                                 "(the model would learn the split). Remove one of them.")
        if name not in excluded:
            features.append(name)
    return features, target


def _split_inputs(loaded: LoadedConfig, table: Table) -> tuple[np.ndarray | None,
                                                               np.ndarray | None]:
    """The group id of every row, and the row indices in time order (None where unused)."""
    spec = loaded.config.validation
    columns = _split_columns(loaded, table)
    groups = time_rows = None
    if "groups" in columns:
        check_column(table, columns["groups"], numeric=False)
        groups = table.columns[columns["groups"]]
    if "time_order" in columns:
        name = columns["time_order"]
        check_column(table, name, numeric=False)
        values = table.columns[name]
        if values.ndim > 1:
            raise KeyProblem(("validation", "time_order"), f"{name!r} is an array column; "
                             "time_order needs one value per row.")
        time_rows = np.argsort(values, kind="stable").astype(np.int64)
    elif spec.time_order is True:
        time_rows = np.arange(table.n_rows, dtype=np.int64)
    return groups, time_rows


def load_experiment(loaded: LoadedConfig) -> Experiment:
    """Load the data, choose columns and task, and make the splits."""
    cfg = loaded.config
    if cfg.model.is_graph:
        return _load_graph_experiment(loaded)
    with loaded.at_keys():
        check_parts(cfg.data, cfg.validation)
        table, parts = load_parts(cfg.data, int(cfg.seed))
        features, target = _columns(loaded, table)
        hold(table, [target, *_split_columns(loaded, table).values()])
        if not features:
            raise KeyProblem(("data", "features"), "no feature columns are left.")
        target_values = table.columns[target]
        hints = target_hints(cfg.compile.loss, list(cfg.compile.metrics))
        task = infer_task(cfg.data.task, target_values, hints)
        if cfg.data.task == "auto" and task == "classification":
            problem = continuous_problem(target_values, cfg.compile.loss,
                                         list(cfg.compile.metrics))
            if problem is not None:
                raise problem
        encoding = infer_target_encoding(cfg.data.target_encoding, hints)
        labels = target_values if task == "classification" else None
        groups, time_rows = _split_inputs(loaded, table)
        usable, notes = usable_rows(table, [target], features, cfg.data)
        plan = split_parts(parts, table.n_rows, labels, cfg.validation, int(cfg.seed),
                           groups, time_rows, usable)
    return Experiment(loaded, table, features, target, task, encoding, plan, groups,
                      notes=notes)


def _output_hints(cfg: Any) -> dict[str, TargetHints]:
    """Per output of a graph, what its loss and metrics say about its target."""
    hints = {}
    for name in cfg.model.outputs:
        loss, metrics = cfg.compile.loss, cfg.compile.metrics
        if isinstance(loss, dict):
            loss = loss.get(name, "")
        if isinstance(metrics, dict):
            metrics = metrics.get(name, [])
        hints[name] = target_hints(loss, list(metrics))
    return hints


def _load_graph_experiment(loaded: LoadedConfig) -> Experiment:
    """A graph model's data: columns per input, a target per output; the splits stratify on
    the first classification output."""
    cfg = loaded.config
    with loaded.at_keys():
        check_parts(cfg.data, cfg.validation)
        table, parts = load_parts(cfg.data, int(cfg.seed))
        steering = tuple(_split_columns(loaded, table).values())
        hold(table, [*steering, *(n for n in table.names if table.columns[n].ndim == 1)])
        graph = graph_columns(cfg.data, cfg.model, table, _output_hints(cfg), steering)
        labels = next((table.columns[t.column] for t in graph.targets
                       if t.task == "classification"), None)
        groups, time_rows = _split_inputs(loaded, table)
        usable, notes = usable_rows(table, [t.column for t in graph.targets], graph.features,
                                    cfg.data)
        plan = split_parts(parts, table.n_rows, labels, cfg.validation, int(cfg.seed),
                           groups, time_rows, usable)
    first = graph.targets[0]
    return Experiment(loaded, table, graph.features, first.column, first.task, first.encoding,
                      plan, groups, graph, notes)

"""`evaluate` and `predict`: a run directory read back, its preprocessing applied unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.config import LoadedConfig, load_config
from kerastrain.data import layers
from kerastrain.data.folders import FILE_COLUMN, FolderTable, read_rows
from kerastrain.data.graphdata import GraphPreprocessor, load_preprocessor
from kerastrain.data.imagestream import files_named, model_input
from kerastrain.data.kinds import markers, missing_mask
from kerastrain.data.outputs import check_output, kept_as_written, write_table
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.presplit import load_parts
from kerastrain.data.sources import bundled_class_names, with_class_names
from kerastrain.data.splits import SplitPlan
from kerastrain.data.table import Table, fingerprint_columns
from kerastrain.errors import DataError, KeyProblem, RunDirError, UserError
from kerastrain.models.feed import prediction_input
from kerastrain.models.model import evaluate_model
from kerastrain.plugins import import_plugins
from kerastrain.rundir import RunDir, read_json


@dataclass
class LoadedRun:
    run: RunDir
    loaded: LoadedConfig
    pre: Preprocessor | GraphPreprocessor
    model: Any


def _import_run_plugins(run: RunDir, loaded: LoadedConfig) -> None:
    """The config's plugins, from the folder fit imported them from (or sys.path), so that
    their custom objects are registered before `model.keras` is loaded."""
    recorded = [*(loaded.config.plugin_path or []), *run.info().get("plugin_path", [])]
    folders = [Path(p) for p in dict.fromkeys(recorded)]
    try:
        import_plugins(loaded.config.plugins, folders)
    except KeyProblem as exc:
        raise RunDirError(f"{run.path}: {exc.message} The run's config names the plugin; "
                          "put its folder on PYTHONPATH.") from None


# What evaluate and predict may change in a run's config: how many rows are scored at a
# time. The rest says what the model is and what it was trained on, which a finished run
# keeps as it was.
RUN_OVERRIDES = ("training.batch_size",)

UNSAFE_REASON = ("it holds Python code (a Lambda layer's function, stored as bytecode), "
                 "which loading would run: a model file can carry any code, so Keras's safe "
                 "mode refuses it. Load it only if you trust where the run came from.")


def check_run_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """Overrides of a finished run's config: only the keys in `RUN_OVERRIDES`."""
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if "=" in text and key not in RUN_OVERRIDES:
            raise UserError(f"--set {text}: a finished run's config takes overrides only of "
                            f"{', '.join(RUN_OVERRIDES)} (how many rows are scored at a "
                            f"time); {key} says what the model is or what it was trained on, "
                            "and the run's model stays as it was trained. To change it, train "
                            "a new run from the run's config.yaml with that override.")


def load_run(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
             unsafe: bool = False) -> LoadedRun:
    """A completed run read back: its config (with `overrides` of `RUN_OVERRIDES`), its
    plugins, preprocessing and model. The model is loaded in Keras's safe mode unless
    `unsafe`: a file holding code (a Lambda layer) is refused."""
    check_run_overrides(overrides)
    run = RunDir.open(path)
    loaded = load_config(run.config, list(overrides))
    _import_run_plugins(run, loaded)
    pre = load_preprocessor(read_json(run.preprocessing))
    keras = _keras.keras()
    layers.classes()  # kerastrain's layers registered before the model that holds them loads
    try:
        model = keras.saving.load_model(run.model, safe_mode=not unsafe)
    except ValueError as exc:
        if "safe_mode" not in str(exc):
            raise
        raise UserError(f"{run.model}: refused to load the model: {UNSAFE_REASON}",
                        option="unsafe") from None
    return LoadedRun(run, loaded, pre, model)


def _run_rows(loaded_run: LoadedRun) -> tuple[Table, np.ndarray, str]:
    """The run's own data and the rows to score: the test split, else the validation rows."""
    cfg = loaded_run.loaded.config
    table = load_parts(cfg.data, int(cfg.seed))[0]
    saved = read_json(loaded_run.run.preprocessing).get("data", {})
    plan = SplitPlan.from_json(read_json(loaded_run.run.splits))
    if saved.get("rows") != table.n_rows:
        raise DataError(f"{table.origin} now has {table.n_rows} rows; the run was trained on "
                        f"{saved.get('rows')}. Score a file of other rows instead.",
                        option="data")
    if saved.get("sha256") and saved["sha256"] != fingerprint_columns(
            table, loaded_run.pre.used_columns):
        raise DataError(f"{table.origin} changed since the run was trained; its test rows "
                        "are no longer the ones held out. Score a file of rows instead.",
                        option="data")
    if len(plan.test):
        return table, plan.test, "test"
    if plan.scheme != "holdout":
        raise UserError("this cross-validation run has no test split, and its model was "
                        "refit on every row: there are no unseen rows of its own to score. "
                        "Score a file of rows instead (the folds' scores are in "
                        "cv_summary.json).", option="data")
    return table, plan.folds[0].validation, "validation (no test split was configured)"


def check_input(run_dir: str | Path, path: str | Path | list[Path]) -> None:
    """The run, then the rows to read: a file that is missing is said at once, before the
    model (and TensorFlow with it) is loaded. A folder is refused later, by the reader,
    unless the run was trained on an image or text folder."""
    RunDir.open(run_dir)
    for each in path if isinstance(path, list) else [path]:
        if not Path(each).exists():
            raise DataError(f"{each}: no such data file.")


def evaluate(path: str | Path, data: str | Path | None = None,
             batch_size: int | None = None, overrides: list[str] | tuple[str, ...] = (),
             unsafe: bool = False) -> dict[str, Any]:
    """Keras metrics of the run's model on its test split (or on the rows of `data`)."""
    if data is not None:
        check_input(path, data)
    loaded_run = load_run(path, overrides, unsafe)
    pre = loaded_run.pre
    if pre.target is None:
        raise UserError("the run has no target to evaluate against.")
    names = None
    notes: list[str] = []
    if data is not None:
        table = read_rows(data, loaded_run.loaded.config.data.source, labelled=True)
        pre.check_columns(table, with_target=True)
        names = bundled_class_names(loaded_run.loaded.config.data.source) \
            if isinstance(pre, Preprocessor) and pre.task == "classification" else None
        if names is not None:  # the set's integer codes, as scikit-learn ships them
            table = with_class_names(table, pre.target["name"], names)
        target = pre.target["name"]
        missing = missing_mask(table.columns[target],
                               markers(loaded_run.loaded.config.data.preprocessing))
        if missing.any():
            notes.append(f"{int(missing.sum())} rows have no value of the target {target!r} "
                         "and are left out")
            table = Table({k: v[~missing] for k, v in table.columns.items()}, table.origin)
        notes += pre.check_values(table, with_target=True)
        rows, split = np.arange(table.n_rows), str(data)
    else:
        table, rows, split = _run_rows(loaded_run)
    x = model_input(pre, table, rows)
    try:
        y = pre.transform_y(table, rows, "the evaluated rows")
    except DataError as exc:  # a label never seen in training: say how to write them
        codes = "" if names is None else (
            ", or as scikit-learn's integer codes: " +
            ", ".join(f"{i} = {n}" for i, n in enumerate(names)))
        raise DataError(f"{exc} Write each label as one of these classes{codes}.",
                        option=exc.option) from None
    size = batch_size or loaded_run.loaded.config.training.batch_size
    with files_named(table):
        scores = evaluate_model(loaded_run.model, x, y, size)
    return {"run_dir": str(loaded_run.run.path), "split": split, "rows": int(len(rows)),
            "metrics": scores, "notes": notes}


def prediction_columns(pre: Preprocessor, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """Named output columns: label and `prob_<class>` for classifiers, the value otherwise."""
    target = pre.target["name"] if pre.target else "prediction"
    if pre.task == "classification":
        labels, scores = pre.decode(outputs)
        columns: dict[str, np.ndarray] = {target: np.asarray(labels, dtype=object)}
        for j, label in enumerate(pre.classes):
            columns[f"prob_{label}"] = scores[:, j]
        return columns
    values = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if values.shape[1] == 1:
        return {target: values[:, 0]}
    return {f"{target}_{j}": values[:, j] for j in range(values.shape[1])}


def graph_prediction_columns(pre: GraphPreprocessor, outputs: Any) -> dict[str, np.ndarray]:
    """One set of columns per output, each prefixed by the output's name: `<output>` (the
    label or value, `<output>_<j>` for several values) and `<output>_prob_<class>`."""
    if isinstance(outputs, dict):
        values = [outputs[name] for name in pre.outputs]
    else:
        values = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    columns: dict[str, np.ndarray] = {}
    for (name, out_pre), out in zip(pre.outputs.items(), values, strict=True):
        target = out_pre.target["name"]
        for k, (column, data) in enumerate(prediction_columns(out_pre, out).items()):
            if out_pre.task == "classification" and k > 0:  # prob_<class>
                columns[f"{name}_{column}"] = data
            else:  # the label or value: <target>, <target>_<j>
                columns[name + column[len(target):]] = data
    return columns


def predict(path: str | Path, input_file: str | Path | list[Path], output: str | Path,
            overwrite: bool = False, batch_size: int | None = None,
            overrides: list[str] | tuple[str, ...] = (), unsafe: bool = False,
            keep: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Apply the run's preprocessing and model to raw rows; write one row of output each,
    after the input's `keep` columns (an id, to join the results back)."""
    output = Path(output)
    check_input(path, input_file)
    check_output(output, overwrite)
    loaded_run = load_run(path, overrides, unsafe)
    pre = loaded_run.pre
    table = read_rows(input_file, loaded_run.loaded.config.data.source, labelled=False)
    pre.check_columns(table, with_target=False)
    kept = {name: table.column(name, "column to keep") for name in keep}
    if not isinstance(input_file, list):
        kept = kept_as_written(Path(input_file), kept)
    if isinstance(table, FolderTable):  # samples read from files: each row's file name
        kept = {FILE_COLUMN: np.asarray(table.files, dtype=object), **kept}
    notes = pre.check_values(table, with_target=False)
    x = model_input(pre, table)
    size = batch_size or loaded_run.loaded.config.training.batch_size
    with files_named(table):
        outputs = loaded_run.model.predict(**prediction_input(x, size), verbose=0)
    if isinstance(pre, GraphPreprocessor):
        columns = graph_prediction_columns(pre, outputs)
    else:
        columns = prediction_columns(pre, outputs)
    clash = sorted(set(kept) & set(columns))
    if clash:
        raise UserError(f"the kept column(s) {', '.join(clash)} have the name of a prediction "
                        "column; keep other columns.")
    columns = {**kept, **columns}
    write_table(output, columns)
    given = table.origin if isinstance(input_file, list) else str(input_file)
    return {"run_dir": str(loaded_run.run.path), "input": given,
            "output": str(output), "rows": int(table.n_rows), "columns": list(columns),
            "notes": notes}

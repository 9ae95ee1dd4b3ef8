"""`validate` and `fit`: every check first, then training fold by fold into a run directory."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from kerastrain import __version__, _keras
from kerastrain.config import LoadedConfig
from kerastrain.data.leakage import LeakageReport, check_leakage
from kerastrain.data.preprocess import Preprocessor, label_value
from kerastrain.data.splits import Fold
from kerastrain.data.table import fingerprint_columns
from kerastrain.errors import KeyProblem, RunInterrupted
from kerastrain.experiment import Experiment, at_keys, check_names, load_experiment
from kerastrain.models.build import build_sequential, check_output_width, compile_model
from kerastrain.models.graph import build_graph, check_graph_outputs, evaluate_model
from kerastrain.rundir import (
    RunDir,
    atomic_path,
    now,
    trained,
    write_history,
    write_json,
    write_text,
)
from kerastrain.training import report
from kerastrain.training.backup import resumable
from kerastrain.training.callbacks import (
    check_monitors,
    check_no_backup,
    held_out_curves,
    progress_callback,
    run_callbacks,
    steering_callbacks,
    tensorboard_enabled,
    user_callbacks,
)
from kerastrain.training.strategy import StrategyChoice, choose_strategy


@dataclass
class Checked:
    """What `validate` found: the experiment, the strategy, and the model's log names."""

    experiment: Experiment
    strategy: StrategyChoice
    log_names: list[str]
    n_params: int
    summary: dict[str, Any] = field(default_factory=dict)
    leakage: LeakageReport | None = None


def _configure_runtime(loaded: LoadedConfig) -> None:
    keras = _keras.keras()
    runtime = loaded.config.runtime
    with at_keys(loaded):
        if runtime.dtype_policy:
            try:
                keras.config.set_dtype_policy(runtime.dtype_policy)
            except ValueError as exc:
                raise KeyProblem(("runtime", "dtype_policy"), str(exc)) from None
        if runtime.deterministic:
            _keras.tf().config.experimental.enable_op_determinism()


def build_model(experiment: Experiment, pre: Preprocessor) -> Any:
    """The configured model, compiled, with its output checked against the target."""
    cfg = experiment.loaded.config
    with at_keys(experiment.loaded):
        if cfg.model.is_graph:
            model = build_graph(cfg.model, pre.input_shape)
            compile_model(model, cfg.compile)
            check_graph_outputs(model, cfg.model, pre.outputs)
            return model
        model = build_sequential(cfg.model, pre.input_shape)
        compile_model(model, cfg.compile)
        check_output_width(model, cfg.model, experiment.task, pre.classes,
                           experiment.target_encoding)
    return model


def check_steering(loaded: LoadedConfig) -> None:
    """Under cross-validation, what steers training must not be what a fold is scored on,
    unless the user says so."""
    spec = loaded.config.validation
    if not spec.cross_validated or spec.validation_split > 0 or spec.steer_on_scored_rows:
        return
    steering = steering_callbacks(loaded.config)
    if steering:
        i = steering[0]
        raise KeyProblem(("callbacks", i), f"{loaded.config.callbacks[i].type} acts on a val_ "
                         "quantity, and with validation.validation_split: 0 each fold validates "
                         "on the rows it is scored on: its scores would be optimistic. Set "
                         "validation.validation_split above 0 (an inner split of each fold's "
                         "training rows steers instead), or validation.steer_on_scored_rows: "
                         "true to accept it knowingly.")


def leakage_report(experiment: Experiment) -> LeakageReport | None:
    """Counted before training; `validation.leakage: error` stops the run."""
    spec = experiment.loaded.config.validation
    if spec.leakage == "ignore":
        return None
    report = check_leakage(experiment.table, experiment.features, experiment.plan,
                           experiment.groups)
    if report.total and spec.leakage == "error":
        raise KeyProblem(("validation", "leakage"), report.message())
    return report


def check(loaded: LoadedConfig) -> Checked:
    """Every check `fit` makes before training: names, data, splits, leakage, the model on
    the real input shape, one evaluation batch (for the names Keras will log), callback
    monitors."""
    check_names(loaded)
    _configure_runtime(loaded)
    experiment = load_experiment(loaded)
    with at_keys(loaded):
        check_steering(loaded)
        leakage = leakage_report(experiment)
        strategy = choose_strategy(loaded.config.runtime)
    fold = experiment.plan.folds[0]
    pre = experiment.preprocessor(fold.fit_rows)
    with strategy.strategy.scope():
        model = build_model(experiment, pre)
    probe = fold.fit_rows[: loaded.config.training.batch_size]
    x, y = experiment.arrays(pre, probe, "training rows")
    logs = model.evaluate(x, y, batch_size=len(probe), verbose=0, return_dict=True)
    log_names = list(logs)
    with at_keys(loaded):
        check_monitors(loaded.config, log_names)
        check_no_backup(loaded.config)
        tensorboard_enabled(loaded.config)
        _class_weight(experiment, pre, y)
    plan = experiment.plan
    summary = {"rows": experiment.table.n_rows, "features": experiment.features,
               "target": experiment.target, "task": experiment.task,
               "input_shape": pre.input_shape, "classes": pre.classes,
               "scheme": plan.scheme, "folds": len(plan.folds),
               "train_rows": len(fold.fit_rows), "validation_rows": len(fold.validation),
               "test_rows": len(plan.test), "parameters": int(model.count_params()),
               "strategy": strategy.name, "logged": log_names}
    if loaded.config.validation.cross_validated:
        summary.update(splitter=plan.splitter, inner_validation_rows=len(fold.inner))
    warnings = list(plan.notes)
    spec = loaded.config.validation
    if spec.cross_validated and not spec.refit and len(plan.test):
        warnings.append("the test split is kept apart but never scored: without "
                        "validation.refit there is no final model to score it once.")
    if leakage is not None:
        summary["leakage"] = leakage.headline()
        if leakage.total:
            warnings.append(leakage.message())
    summary["warnings"] = warnings
    if experiment.graph is not None:
        summary.update(target={t.output: t.column for t in experiment.graph.targets},
                       task={t.output: t.task for t in experiment.graph.targets},
                       classes=pre.output_classes)
    return Checked(experiment, strategy, log_names, int(model.count_params()), summary,
                   leakage)


def _class_weight(experiment: Experiment, pre: Preprocessor, y_train: np.ndarray) -> dict | None:
    spec = experiment.loaded.config.training.class_weight
    if spec is None:
        return None
    if experiment.task != "classification":
        raise KeyProblem(("training", "class_weight"), "class_weight needs a classification "
                                                        "target.")
    codes = y_train.argmax(axis=1) if y_train.ndim > 1 else y_train
    n = len(pre.classes)
    if spec == "balanced":
        counts = np.bincount(codes.astype(np.int64), minlength=n).astype(np.float64)
        counts[counts == 0] = 1.0
        return {i: float(len(codes) / (n * counts[i])) for i in range(n)}
    index = {c: i for i, c in enumerate(pre.classes)}
    weights = {i: 1.0 for i in range(n)}
    for label, weight in spec.items():
        if label_value(label) not in index:
            raise KeyProblem(("training", "class_weight", label),
                             f"{label!r} is not a class; the classes are {pre.classes}.")
        weights[index[label_value(label)]] = float(weight)
    return weights


@dataclass
class FoldResult:
    model: Any
    pre: Preprocessor
    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]]


def train_fold(checked: Checked, fold: Fold, out_dir: Path, console: Console | None,
               label: str, epochs: int | None = None, display: Any = None,
               overall: Any = None) -> FoldResult:
    """A fresh model (state cleared) trained on the fold's `fit_rows`, preprocessing fitted
    on them only; Keras validates on `steer_rows` and the fold is scored on `validation`.
    A fold without validation rows is a refit: fixed epochs, no callback acting on val_*.
    Every epoch is backed up in `out_dir/checkpoints/backup`; a backup left there by an
    interrupted run is where training resumes (the history merges both parts)."""
    keras = _keras.keras()
    experiment = checked.experiment
    cfg = experiment.loaded.config
    training = cfg.training
    refit = not len(fold.validation)
    keras.backend.clear_session()
    keras.utils.set_random_seed(experiment.seed)
    pre = experiment.preprocessor(fold.fit_rows)
    x_train, y_train = experiment.arrays(pre, fold.fit_rows, "training rows")
    with checked.strategy.strategy.scope():
        model = build_model(experiment, pre)
    with at_keys(experiment.loaded):
        skip = tuple(steering_callbacks(cfg)) if refit else ()
        callbacks = user_callbacks(cfg, out_dir, skip)
        if not refit:
            callbacks += run_callbacks(cfg, out_dir)
        class_weight = _class_weight(experiment, pre, y_train)
    eval_batch = training.validation_batch_size or training.batch_size
    validation_data = None
    heldout: dict[str, list[float]] = {}
    if not refit:
        validation_data = experiment.arrays(pre, fold.steer_rows, "validation rows")
        x_val, y_val = (validation_data if not len(fold.inner) else
                        experiment.arrays(pre, fold.validation, "validation rows"))
        if len(fold.inner):
            callbacks.append(held_out_curves(x_val, y_val, eval_batch, heldout))
    resuming = resumable(out_dir, list(callbacks), heldout)
    callbacks += resuming
    epochs = epochs or training.epochs
    if console is not None:
        callbacks.append(progress_callback(console, epochs, label, display, overall))
    model.fit(
        x_train, y_train, batch_size=training.batch_size, epochs=epochs,
        validation_data=validation_data, shuffle=training.shuffle, class_weight=class_weight,
        validation_freq=training.validation_freq,
        validation_batch_size=training.validation_batch_size, callbacks=callbacks, verbose=0)
    logged = resuming[0].history()
    metrics = {}
    if not refit:
        metrics["validation"] = evaluate_model(model, x_val, y_val, eval_batch)
    return FoldResult(model, pre, logged, metrics)


def versions() -> dict[str, str]:
    import sklearn

    keras = _keras.keras()
    return {"kerastrain": __version__, "python": platform.python_version(),
            "tensorflow": _keras.tf().__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "platform": platform.platform()}


def score_test(experiment: Experiment, result: FoldResult) -> dict[str, float] | None:
    """The model's scores on the test split, or None when there is none."""
    if not len(experiment.plan.test):
        return None
    x_test, y_test = experiment.arrays(result.pre, experiment.plan.test, "test rows")
    return evaluate_model(result.model, x_test, y_test,
                          experiment.loaded.config.training.batch_size)


def write_model_files(run: RunDir, experiment: Experiment, result: FoldResult,
                      metrics: dict[str, Any], extra_summary: str = "") -> list[str]:
    """The run's root files for `evaluate`/`predict`: model, preprocessing, history,
    metrics, summary (and model.png for graph models). Returns notes for run.json."""
    pre_json = result.pre.to_json()
    pre_json["data"] = {"rows": experiment.table.n_rows, "sha256": data_fingerprint(experiment)}
    write_json(run.path / "preprocessing.json", pre_json)
    write_history(run.path / "history.csv", result.history)
    save_model(result.model, run.path / "model.keras")
    write_text(run.path / "summary.txt",
               report.summary_text(result.model, metrics) + extra_summary)
    notes = [n for n in report.record_model(run, experiment.loaded, result.model) if n]
    write_json(run.path / "metrics.json", metrics)  # last: marks the model as trained
    return notes


def save_model(model: Any, path: Path) -> None:
    """model.keras, replaced in one step: an interruption never leaves half a file."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def _holdout(checked: Checked, run: RunDir, console: Console | None) -> dict[str, Any]:
    experiment = checked.experiment
    if trained(run.path):  # interrupted after its files were written
        return run.read_json("metrics.json")
    fold = experiment.plan.folds[0]
    result = train_fold(checked, fold, run.path, console, fold.name)
    metrics = dict(result.metrics)
    test = score_test(experiment, result)
    if test is not None:
        metrics["test"] = test
    if experiment.loaded.config.output.plots:
        run.add_notes(report.plot_history(result.history,
                                          run.sub("plots") / "learning_curves.png"))
    run.add_notes(*write_model_files(run, experiment, result, metrics))
    return metrics


def fit(loaded: LoadedConfig, console: Console | None = None,
        argv: list[str] | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Check everything, then train into a new run directory. Returns it and the metrics."""
    checked = check(loaded)
    experiment = checked.experiment
    cfg = loaded.config
    run = RunDir.create(cfg.output.runs_dir, cfg.name)
    started = time.time()
    run.write_config(cfg.resolved())
    run.update_info(status="running", started_at=now(), command=argv or sys.argv,
                    config_file=str(loaded.path), seed=cfg.seed, versions=versions(),
                    strategy=checked.strategy.name, devices=checked.strategy.devices,
                    task=experiment.task, data=checked.summary,
                    data_sha256=data_fingerprint(experiment),
                    warnings=checked.summary["warnings"],
                    leakage=checked.leakage.to_json() if checked.leakage else "not checked")
    warn(checked, console)
    write_json(run.path / "splits.json", experiment.plan.to_json())
    return run, train_run(checked, run, console, started)


def data_fingerprint(experiment: Experiment) -> str:
    """The SHA-256 of the columns the run uses: `resume` checks the data is unchanged."""
    return fingerprint_columns(experiment.table, experiment.used_columns)


def warn(checked: Checked, console: Console | None) -> None:
    if console is not None:
        for warning in checked.summary["warnings"]:
            console.print(f"warning: {warning}", markup=False)


def train_run(checked: Checked, run: RunDir, console: Console | None, started: float,
              earlier_s: float = 0.0) -> dict[str, Any]:
    """Train under the run's scheme, recording in run.json how it ended (`duration_s`
    adds `earlier_s`, the time of the sessions before a resume). Ctrl-C becomes
    `RunInterrupted`, which names the run to resume."""
    def ended(**fields: Any) -> None:
        run.update_info(finished_at=now(),
                        duration_s=round(earlier_s + time.time() - started, 3), **fields)

    try:
        if checked.experiment.loaded.config.validation.cross_validated:
            from kerastrain.training.crossval import cross_validate

            metrics = cross_validate(checked, run, console)
        else:
            metrics = _holdout(checked, run, console)
    except KeyboardInterrupt:
        ended(status="interrupted")
        raise RunInterrupted(run.path) from None
    except BaseException as exc:
        ended(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    ended(status="completed")
    return metrics

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
from kerastrain.data.preprocess import Preprocessor, label_value
from kerastrain.data.splits import Fold
from kerastrain.data.table import fingerprint_columns
from kerastrain.errors import KeyProblem
from kerastrain.experiment import Experiment, at_keys, check_names, load_experiment
from kerastrain.models.build import build_sequential, check_output_width, compile_model
from kerastrain.models.graph import build_graph, check_graph_outputs, evaluate_model
from kerastrain.rundir import RunDir, now, write_history, write_json, write_text
from kerastrain.training import report
from kerastrain.training.callbacks import (
    check_monitors,
    progress_callback,
    run_callbacks,
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


def check(loaded: LoadedConfig) -> Checked:
    """Every check `fit` makes before training: names, data, splits, the model on the real
    input shape, one evaluation batch (for the names Keras will log), callback monitors."""
    check_names(loaded)
    _configure_runtime(loaded)
    experiment = load_experiment(loaded)
    with at_keys(loaded):
        strategy = choose_strategy(loaded.config.runtime)
    fold = experiment.plan.folds[0]
    pre = experiment.preprocessor(fold.train)
    with strategy.strategy.scope():
        model = build_model(experiment, pre)
    probe = fold.train[: loaded.config.training.batch_size]
    x, y = experiment.arrays(pre, probe, "training rows")
    logs = model.evaluate(x, y, batch_size=len(probe), verbose=0, return_dict=True)
    log_names = list(logs)
    with at_keys(loaded):
        check_monitors(loaded.config, log_names)
        tensorboard_enabled(loaded.config)
        _class_weight(experiment, pre, y)
    plan = experiment.plan
    summary = {"rows": experiment.table.n_rows, "features": experiment.features,
               "target": experiment.target, "task": experiment.task,
               "input_shape": pre.input_shape, "classes": pre.classes,
               "scheme": plan.scheme, "folds": len(plan.folds),
               "train_rows": len(fold.train), "validation_rows": len(fold.validation),
               "test_rows": len(plan.test), "parameters": int(model.count_params()),
               "strategy": strategy.name, "logged": log_names}
    if experiment.graph is not None:
        summary.update(target={t.output: t.column for t in experiment.graph.targets},
                       task={t.output: t.task for t in experiment.graph.targets},
                       classes=pre.output_classes)
    return Checked(experiment, strategy, log_names, int(model.count_params()), summary)


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
               label: str) -> FoldResult:
    """A fresh model trained on the fold's training rows, preprocessing fitted on them only."""
    keras = _keras.keras()
    experiment = checked.experiment
    cfg = experiment.loaded.config
    keras.backend.clear_session()
    keras.utils.set_random_seed(experiment.seed)
    pre = experiment.preprocessor(fold.train)
    x_train, y_train = experiment.arrays(pre, fold.train, "training rows")
    x_val, y_val = experiment.arrays(pre, fold.validation, "validation rows")
    with checked.strategy.strategy.scope():
        model = build_model(experiment, pre)
    with at_keys(experiment.loaded):
        callbacks = user_callbacks(cfg, out_dir) + run_callbacks(cfg, out_dir)
        class_weight = _class_weight(experiment, pre, y_train)
    if console is not None:
        callbacks.append(progress_callback(console, cfg.training.epochs, label))
    training = cfg.training
    history = model.fit(
        x_train, y_train, batch_size=training.batch_size, epochs=training.epochs,
        validation_data=(x_val, y_val), shuffle=training.shuffle, class_weight=class_weight,
        validation_freq=training.validation_freq,
        validation_batch_size=training.validation_batch_size, callbacks=callbacks, verbose=0)
    scores = evaluate_model(model, x_val, y_val,
                            training.validation_batch_size or training.batch_size)
    return FoldResult(model, pre, {k: list(map(float, v)) for k, v in history.history.items()},
                      {"validation": scores})


def versions() -> dict[str, str]:
    import sklearn

    keras = _keras.keras()
    return {"kerastrain": __version__, "python": platform.python_version(),
            "tensorflow": _keras.tf().__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "platform": platform.platform()}


def _resolved_config(loaded: LoadedConfig) -> dict[str, Any]:
    resolved = loaded.config.resolved()
    source = resolved["data"]["source"]
    for key in ("path", "target_path"):
        if key in source:
            source[key] = str(Path(source[key]).resolve())
    return resolved


def fit(loaded: LoadedConfig, console: Console | None = None,
        argv: list[str] | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Check everything, then train into a new run directory. Returns it and the metrics."""
    checked = check(loaded)
    experiment = checked.experiment
    cfg = loaded.config
    run = RunDir.create(cfg.output.runs_dir, cfg.name)
    started = time.time()
    run.write_config(_resolved_config(loaded))
    run.update_info(status="running", started_at=now(), command=argv or sys.argv,
                    config_file=str(loaded.path), seed=cfg.seed, versions=versions(),
                    strategy=checked.strategy.name, devices=checked.strategy.devices,
                    task=experiment.task, data=checked.summary)
    write_json(run.path / "splits.json", experiment.plan.to_json())
    try:
        result = train_fold(checked, experiment.plan.folds[0], run.path, console,
                            experiment.plan.folds[0].name)
        metrics = dict(result.metrics)
        if len(experiment.plan.test):
            x_test, y_test = experiment.arrays(result.pre, experiment.plan.test, "test rows")
            metrics["test"] = evaluate_model(result.model, x_test, y_test,
                                             cfg.training.batch_size)
        pre_json = result.pre.to_json()
        pre_json["data"] = {"rows": experiment.table.n_rows,
                            "sha256": fingerprint_columns(experiment.table,
                                                          experiment.used_columns)}
        write_json(run.path / "preprocessing.json", pre_json)
        write_history(run.path / "history.csv", result.history)
        write_json(run.path / "metrics.json", metrics)
        result.model.save(run.path / "model.keras")
        write_text(run.path / "summary.txt", report.summary_text(result.model, metrics))
        notes = report.record_model(run, loaded, result.model)
        if cfg.output.plots:
            notes.append(report.plot_history(result.history,
                                             run.sub("plots") / "learning_curves.png"))
        if any(notes):
            run.update_info(notes=[n for n in notes if n])
    except KeyboardInterrupt:
        run.update_info(status="interrupted", finished_at=now(),
                        duration_s=round(time.time() - started, 3))
        raise
    except BaseException as exc:
        run.update_info(status="failed", finished_at=now(),
                        duration_s=round(time.time() - started, 3),
                        error=f"{type(exc).__name__}: {exc}")
        raise
    run.update_info(status="completed", finished_at=now(),
                    duration_s=round(time.time() - started, 3))
    return run, metrics

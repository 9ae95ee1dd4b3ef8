"""`validate`: every check `fit` makes before training, in order (names, runtime, data,
splits, steering, leakage, the model on the real input shape, one evaluation batch for
the names Keras will log, callbacks), and what they found: a `Checked` experiment that
training starts from."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.config import LoadedConfig
from kerastrain.config.schema import RuntimeSpec, TrainingSpec
from kerastrain.data.graphdata import GraphPreprocessor
from kerastrain.data.images import is_decode_failure
from kerastrain.data.imagestream import files_named
from kerastrain.data.leakage import LeakageReport, check_leakage
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.splits import Fold
from kerastrain.data.table import fingerprint_columns
from kerastrain.data.values import label_order, label_value, labels
from kerastrain.errors import KeyProblem
from kerastrain.experiment import Experiment, check_names, load_experiment
from kerastrain.models.feed import scoring_input
from kerastrain.models.model import build_model
from kerastrain.models.precision import check_policy, describe
from kerastrain.training.callbacks import (
    check_monitors,
    check_no_backup,
    probe_callbacks,
    steering_callbacks,
    tensorboard_enabled,
)
from kerastrain.training.strategy import StrategyChoice, choose_strategy


@dataclass
class Checked:
    """What `validate` found: the experiment, the strategy, the model's log names, and a
    summary for the user."""

    experiment: Experiment
    strategy: StrategyChoice
    log_names: list[str]
    n_params: int
    summary: dict[str, Any] = field(default_factory=dict)
    leakage: LeakageReport | None = None
    dtype_policy: dict[str, Any] = field(default_factory=dict)
    first_model: tuple[Any, Preprocessor | GraphPreprocessor] | None = None
    hashing: Future | None = None  # the fingerprint being hashed (`check(hash_ahead=True)`)

    def take_model(self, fold: Fold) -> tuple[Any, Preprocessor | GraphPreprocessor] | None:
        """The model the checks built (and its preprocessing), for the plan's first fold,
        once: it is that fold's fresh model (`fresh_model`, same seed), so the run builds
        one model fewer and reuses the evaluation the checks traced."""
        first, self.first_model = self.first_model, None
        return first if fold is self.experiment.plan.folds[0] else None

    @cached_property
    def fingerprint(self) -> str:
        """The SHA-256 of the columns the run uses, for `resume` and `evaluate` to check."""
        return self.hashing.result() if self.hashing else fingerprint_columns(
            self.experiment.table, self.experiment.used_columns)


def check_runs_dir(runs_dir: str) -> None:
    """`output.runs_dir` is a folder, or can be made as one, and is writable; nothing is
    created here (validate writes nothing)."""
    path = Path(runs_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    why = ("a file is in the way" if not existing.is_dir() else
           "Permission denied" if not os.access(existing, os.W_OK | os.X_OK) else None)
    if why is not None:
        raise KeyProblem(("output", "runs_dir"), f"{path}: cannot make a run directory there "
                         f"({why}: {existing}). Set output.runs_dir to a folder you can "
                         "write in.")


def configure_runtime(runtime: RuntimeSpec) -> None:
    """The process-wide settings a run asks for: op determinism. The dtype policy is
    checked here and applied to every model the run builds (`build_model`), not set
    globally: `clear_session` would reset it."""
    if runtime.dtype_policy:
        try:
            check_policy(runtime.dtype_policy)
        except ValueError as exc:
            raise KeyProblem(("runtime", "dtype_policy"), str(exc)) from None
    if runtime.deterministic:
        _keras.tf().config.experimental.enable_op_determinism()


def fresh_model(experiment: Experiment, strategy: StrategyChoice, rows: np.ndarray,
                free_memory: bool = True, pre: Preprocessor | GraphPreprocessor | None = None
                ) -> tuple[Any, Preprocessor | GraphPreprocessor]:
    """A model as every fold starts one: Keras's state cleared (`free_memory`: with a
    garbage collection, worth it only once a model was built), the run's seed set,
    preprocessing fitted on `rows` only (unless given: `pre`), the model built and
    compiled under the strategy and `runtime.dtype_policy`."""
    keras = _keras.keras()
    loaded = experiment.loaded
    cfg = loaded.config
    keras.backend.clear_session(free_memory=free_memory)
    keras.utils.set_random_seed(experiment.seed)
    pre = pre or experiment.preprocessor(rows)
    with strategy.strategy.scope(), loaded.at_keys():
        model = build_model(cfg.model, cfg.compile, pre, cfg.runtime.dtype_policy)
    return model, pre


@contextmanager
def _untouched(model: Any) -> Iterator[None]:
    """Whatever probing the callbacks does to the model (ReduceLROnPlateau may cut the
    learning rate, EarlyStopping may restore weights or stop it), undone after."""
    variables = [*model.variables, *model.optimizer.variables]
    saved = [np.array(v) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
        model.stop_training = False


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


def leakage_report(experiment: Experiment, features: list[str]) -> LeakageReport | None:
    """Counted before training over the `features` the model reads (not the dropped
    identifiers, which would make every row unique); `validation.leakage: error` stops
    the run."""
    spec = experiment.loaded.config.validation
    if spec.leakage == "ignore":
        return None
    report = check_leakage(experiment.table, features, experiment.plan, experiment.groups)
    if report.total and spec.leakage == "error":
        raise KeyProblem(("validation", "leakage"), report.message())
    return report


def check_training_classes(experiment: Experiment) -> None:
    """Every class of a classification target is in every fold's training rows: the
    classes (and the output width) are learned from them, and a class never trained on can
    never be predicted. Splits in time order or by group are where one goes missing."""
    spec = experiment.loaded.config.validation
    targets = ([(t.column, t.task) for t in experiment.graph.targets] if experiment.graph
               else [(experiment.target, experiment.task)])
    for column, task in targets:
        if task != "classification":
            continue
        values = experiment.table.columns[column]
        plan = experiment.plan
        split = np.concatenate([plan.test, *(f.train for f in plan.folds),
                                *(f.validation for f in plan.folds)])
        every = labels(values[np.unique(split)])   # rows without a target are left out
        for fold in experiment.plan.folds:
            missing = every - labels(values[fold.fit_rows])
            if not missing:
                continue
            shown = ", ".join(repr(c) for c in sorted(missing, key=label_order))
            where = "" if len(experiment.plan.folds) == 1 else f" of fold {fold.name}"
            if spec.time_order is not None and spec.time_order is not False:
                raise KeyProblem(("validation", "time_order"), f"in time order, the training "
                                 f"rows{where} (the earliest {len(fold.fit_rows)}) hold no row "
                                 f"of class {shown} of {column!r}: its rows all come later, in "
                                 "the validation or test rows, and a model never trained on a "
                                 "class cannot learn it. Order by another column, drop "
                                 "time_order, or drop that class's rows.")
            key = ("validation", "groups") if spec.groups is not None else ("data", "target")
            raise KeyProblem(key, f"the training rows{where} hold no row of class {shown} of "
                             f"{column!r} (too few rows or groups of it): a model never "
                             "trained on a class cannot learn it. Add rows of that class or "
                             "drop them.")


def class_weight(training: TrainingSpec, task: str, classes: list[Any],
                 y_train: np.ndarray) -> dict | None:
    """Keras's `class_weight` by class index: 'balanced' from the training labels, or the
    configured weight of each label (1 for the others)."""
    spec = training.class_weight
    if spec is None:
        return None
    if task != "classification":
        raise KeyProblem(("training", "class_weight"), "class_weight needs a classification "
                                                        "target.")
    codes = y_train.argmax(axis=1) if y_train.ndim > 1 else y_train
    n = len(classes)
    if spec == "balanced":
        counts = np.bincount(codes.astype(np.int64), minlength=n).astype(np.float64)
        counts[counts == 0] = 1.0
        return {i: float(len(codes) / (n * counts[i])) for i in range(n)}
    index = {c: i for i, c in enumerate(classes)}
    weights = {i: 1.0 for i in range(n)}
    for label, weight in spec.items():
        if label_value(label) not in index:
            raise KeyProblem(("training", "class_weight", label),
                             f"{label!r} is not a class; the classes are {classes}.")
        weights[index[label_value(label)]] = float(weight)
    return weights


def _warnings(experiment: Experiment, leakage: LeakageReport | None,
              pre: Preprocessor | GraphPreprocessor) -> list[str]:
    spec = experiment.loaded.config.validation
    warnings = [*experiment.plan.notes, *experiment.notes, *pre.notes]
    if spec.cross_validated and not spec.refit and len(experiment.plan.test):
        warnings.append("the test split is kept apart but never scored: without "
                        "validation.refit there is no final model to score it once.")
    if leakage is not None and leakage.total:
        warnings.append(leakage.message())
    return warnings


def probe_scores(model: Any, x: Any, y: Any, rows: int) -> dict[str, float]:
    """The model scored on the first training rows, as `fit` will score it: the names Keras
    logs, and any shape error between output and target (which the checks of the loss and
    metrics did not foresee) at compile.loss rather than mid-training."""
    try:  # as `fit` will be given the validation rows: the evaluation traced here is fit's
        return model.evaluate(**scoring_input(x, y, rows), verbose=0, return_dict=True)
    except Exception as exc:  # Keras raises many types for a shape mismatch
        if is_decode_failure(exc):  # an image file, not the loss: named by `files_named`
            raise
        first = " ".join(str(exc).split())[:300]
        raise KeyProblem(("compile", "loss"), "Keras cannot score the model's output against "
                         f"the target with this loss and these metrics: {type(exc).__name__}: "
                         f"{first}. Check that compile.loss and compile.metrics fit the "
                         "target and the last layer.") from None


def check(loaded: LoadedConfig, hash_ahead: bool = False) -> Checked:
    """Every check `fit` makes before training; a `ConfigError` (file, line, key) for the
    first stage that fails. `hash_ahead`: the fingerprint is hashed beside the checks."""
    cfg = loaded.config
    check_names(loaded)
    with loaded.at_keys():
        check_runs_dir(cfg.output.runs_dir)
        configure_runtime(cfg.runtime)
    experiment = load_experiment(loaded)
    hashing = experiment.fingerprint_ahead() if hash_ahead else None
    fold = experiment.plan.folds[0]
    pre = experiment.preprocessor(fold.fit_rows)  # the values of the training rows first
    with loaded.at_keys():
        check_steering(loaded)
        leakage = leakage_report(experiment, pre.feature_names)
        strategy = choose_strategy(cfg.runtime)
    with loaded.at_keys():
        check_training_classes(experiment)
    model, pre = fresh_model(experiment, strategy, fold.fit_rows, free_memory=False, pre=pre)
    probe = fold.fit_rows[: cfg.training.batch_size]
    x, y = experiment.arrays(pre, probe, "training rows")
    with loaded.at_keys(), files_named(experiment.table):
        logs = probe_scores(model, x, y, len(probe))
    log_names = list(logs)
    with loaded.at_keys():
        check_monitors(cfg, log_names)
        check_no_backup(cfg)
        with _untouched(model):  # the first fold trains this very model
            probe_callbacks(cfg.callbacks, model, logs)
        tensorboard_enabled(cfg.output)
        class_weight(cfg.training, experiment.task, pre.classes, y)
    plan = experiment.plan
    summary = {"rows": experiment.table.n_rows, "features": experiment.features,
               "target": experiment.target, "task": experiment.task,
               "input_shape": pre.input_shape, "classes": pre.classes,
               "scheme": plan.scheme, "folds": len(plan.folds),
               "train_rows": len(fold.fit_rows), "validation_rows": len(fold.validation),
               "test_rows": len(plan.test), "parameters": int(model.count_params()),
               "strategy": strategy.name, "logged": log_names, "columns": pre.report()}
    if cfg.validation.cross_validated:
        summary.update(splitter=plan.splitter, inner_validation_rows=len(fold.inner))
    if leakage is not None:
        summary["leakage"] = leakage.headline()
    summary["warnings"] = _warnings(experiment, leakage, pre)
    if experiment.graph is not None:
        summary.update(target={t.output: t.column for t in experiment.graph.targets},
                       task={t.output: t.task for t in experiment.graph.targets},
                       classes=pre.output_classes)
    return Checked(experiment, strategy, log_names, int(model.count_params()), summary,
                   leakage, describe(model), (model, pre), hashing)

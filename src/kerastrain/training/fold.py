"""Training one model (a fold, the hold-out, or the refit) and saving what it made: a fresh
model on the fold's training rows, preprocessing fitted on them only, every epoch backed
up for `resume`, and its files written so that the last one marks it trained."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastrain.data.graphdata import GraphPreprocessor
from kerastrain.data.imagecache import decoded_images
from kerastrain.data.imagestream import files_named
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.splits import Fold
from kerastrain.experiment import Experiment
from kerastrain.models.feed import evaluation_input, training_input
from kerastrain.models.model import evaluate_model
from kerastrain.rundir import History, RunDir, atomic_path, write_history, write_json, write_text
from kerastrain.training import report, reuse
from kerastrain.training.backup import EpochBackup, discard_backup
from kerastrain.training.callbacks import (
    EpochProgress,
    HeldOutCurves,
    StopOnNaN,
    run_callbacks,
    steering_callbacks,
    user_callbacks,
)
from kerastrain.training.check import Checked, class_weight, fresh_model
from kerastrain.training.progress import Progress
from kerastrain.training.scores import LastLogs, logged_scores
from kerastrain.training.strategy import StrategyChoice


@dataclass
class FoldResult:
    model: Any
    pre: Preprocessor | GraphPreprocessor
    history: History
    metrics: dict[str, dict[str, float]]


def train_fold(experiment: Experiment, strategy: StrategyChoice, fold: Fold, place: RunDir,
               label: str, progress: Progress, epochs: int | None = None,
               start: tuple[Any, Preprocessor | GraphPreprocessor] | None = None) -> FoldResult:
    """A fresh model (state cleared) trained on the fold's `fit_rows`, preprocessing fitted
    on them only; Keras validates on `steer_rows` and the fold is scored on `validation`.
    A fold without validation rows is a refit: fixed epochs, no callback acting on val_*.
    Its training state is backed up in `place.backup` (see `backup.py`); a backup left
    there by an interrupted run is where training resumes (the history merges both
    parts). `start` is the fold's fresh model and preprocessing when the checks built
    them (`Checked.take_model`)."""
    loaded = experiment.loaded
    cfg = loaded.config
    training = cfg.training
    refit = not len(fold.validation)
    model, pre = start or fresh_model(experiment, strategy, fold.fit_rows,
                                      free_memory=not reuse.holds_small())
    model = reuse.lend(model, strategy.strategy)  # traced once per process, not per fold
    x_train, y_train = experiment.arrays(pre, fold.fit_rows, "training rows")
    with loaded.at_keys():
        skip = tuple(steering_callbacks(cfg)) if refit else ()
        callbacks = user_callbacks(cfg.callbacks, place, skip)
        if not refit:
            callbacks += run_callbacks(cfg.output, place)
        weights = class_weight(training, experiment.task, pre.classes, y_train)
    eval_batch = training.validation_batch_size or training.batch_size
    steer = None
    heldout: dict[str, list[float]] = {}
    if not refit:
        steer = experiment.arrays(pre, fold.steer_rows, "validation rows")
        x_val, y_val = (steer if not len(fold.inner) else
                        experiment.arrays(pre, fold.validation, "validation rows"))
        if len(fold.inner):
            callbacks.append(HeldOutCurves(x_val, y_val, eval_batch, heldout))
    callbacks.append(StopOnNaN())
    backup = EpochBackup(place, list(callbacks), heldout, cfg.output.backup_interval_s)
    epochs = epochs or training.epochs
    last = LastLogs()
    watching = [*callbacks, backup, EpochProgress(progress, label, epochs)]
    progress.fold_begin(label, epochs, backup.resumed_from or 0)
    try:  # an image that does not decode, named; decoded images kept for later epochs
        with files_named(experiment.table), decoded_images(not strategy.distributes):
            model.fit(
                **training_input(x_train, y_train, training.batch_size, training.shuffle,
                                 cfg.seed, backup.resumed_from or 0),
                epochs=epochs, class_weight=weights,
                validation_data=evaluation_input(*steer, eval_batch) if steer else None,
                validation_freq=training.validation_freq,
                validation_batch_size=training.validation_batch_size,
                callbacks=[*watching, last], verbose=0)
        backup.flush()  # until the model's files are written, resume starts from the end
    except BaseException:  # interrupted or failed: every finished epoch stays
        backup.flush()
        if backup.rows:
            write_history(place.history, backup.history())
        raise
    progress.fold_end(label)
    metrics = {}
    if not refit:  # Keras's last val_* logs where they are the scores (`scores.py`)
        logged = None if len(fold.inner) else logged_scores(model, last, watching, strategy)
        with files_named(experiment.table):
            metrics["validation"] = logged or evaluate_model(model, x_val, y_val, eval_batch)
    return FoldResult(model, pre, backup.history(), metrics)


def score_test(experiment: Experiment, result: FoldResult) -> dict[str, float] | None:
    """The model's scores on the test split, or None when there is none."""
    if not len(experiment.plan.test):
        return None
    x_test, y_test = experiment.arrays(result.pre, experiment.plan.test, "test rows")
    with files_named(experiment.table):
        return evaluate_model(result.model, x_test, y_test,
                              experiment.loaded.config.training.batch_size)


def save_model(model: Any, path: Path) -> None:
    """model.keras, replaced in one step: an interruption never leaves half a file."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def write_fold_files(place: RunDir, result: FoldResult) -> None:
    """One cross-validation fold's history, preprocessing, model and (last, marking the
    fold trained) metrics."""
    write_history(place.history, result.history)
    write_json(place.preprocessing, result.pre.to_json())
    save_model(result.model, place.model)
    write_json(place.metrics, result.metrics)  # last: marks the fold trained
    discard_backup(place)


def write_model_files(run: RunDir, checked: Checked, result: FoldResult,
                      metrics: dict[str, Any], extra_summary: str = "") -> list[str]:
    """The run's root files for `evaluate`/`predict`: model, preprocessing, history,
    metrics, summary (and model.png for graph models). Returns notes for run.json."""
    experiment = checked.experiment
    pre_json = result.pre.to_json()
    pre_json["data"] = {"rows": experiment.table.n_rows, "sha256": checked.fingerprint}
    write_json(run.preprocessing, pre_json)
    write_history(run.history, result.history)
    save_model(result.model, run.model)
    write_text(run.summary, report.summary_text(result.model, metrics) + extra_summary)
    notes = [n for n in report.record_model(run, experiment.loaded, result.model) if n]
    write_json(run.metrics, metrics)  # last: marks the model as trained
    discard_backup(run)
    return notes

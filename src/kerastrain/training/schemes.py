"""The validation schemes side by side, every fold loop in one place: the hold-out (one
model), cross-validation (one fresh model per fold into `folds/<repeat>-<fold>/`, the
summary over folds) and the refit on every non-test row that becomes the run's model.
A model whose files are complete is never trained again: that is how `resume` skips
finished work."""

from __future__ import annotations

from typing import Any

import numpy as np

from kerastrain.data.splits import Fold
from kerastrain.rundir import RunDir, read_history, read_json, write_history, write_json, write_text
from kerastrain.training import report
from kerastrain.training.callbacks import steering_callbacks
from kerastrain.training.check import Checked
from kerastrain.training.cvstats import CI_NOTE, best_epoch, mean_history, summarize
from kerastrain.training.fold import (
    FoldResult,
    score_test,
    train_fold,
    write_fold_files,
    write_model_files,
)
from kerastrain.training.progress import Progress

NO_MODEL = ("this cross-validation run kept no final model (validation.refit was false): "
            "each fold's model is in folds/<repeat>-<fold>/model.keras. Run fit again with "
            "validation.refit: true to evaluate or predict.")


def models_to_train(checked: Checked) -> int:
    """How many models the run trains: its folds, and the refit."""
    spec = checked.experiment.loaded.config.validation
    return len(checked.experiment.plan.folds) + int(spec.cross_validated and spec.refit)


def _final_model(checked: Checked, run: RunDir, result: FoldResult, metrics: dict[str, Any],
                 extra_summary: str = "") -> None:
    """The run's own model: scored once on the test split, its files written."""
    test = score_test(checked, result)
    if test is not None:
        metrics["test"] = test
    run.add_notes(*write_model_files(run, checked, result, metrics, extra_summary))


def holdout(checked: Checked, run: RunDir, progress: Progress) -> dict[str, Any]:
    """One model, validated on the hold-out rows, scored on the test split."""
    if run.trained:  # interrupted after its files were written
        return read_json(run.metrics)
    fold = checked.experiment.plan.folds[0]
    result = train_fold(checked, fold, run, fold.name, progress)
    metrics = dict(result.metrics)
    if checked.experiment.loaded.config.output.plots:
        run.add_notes(report.plot_history(result.history, run.learning_curves))
    _final_model(checked, run, result, metrics)
    return metrics


def _cv_summary(checked: Checked, fold_scores: dict[str, dict[str, float]],
                best: dict[str, int]) -> dict[str, Any]:
    plan = checked.experiment.plan
    spec = checked.experiment.loaded.config.validation
    steered_on = ("inner validation rows (validation.validation_split of each fold's "
                  "training rows)" if spec.validation_split > 0 else
                  "the fold's scored rows (validation.steer_on_scored_rows)")
    return {"scheme": plan.scheme, "splitter": plan.splitter, "n_splits": plan.n_splits,
            "n_repeats": plan.n_repeats, "folds": list(fold_scores),
            "scored_on": "each fold's validation rows, once, after training",
            "steered_on": steered_on, "metrics": summarize(fold_scores),
            "best_epochs": best, "note": CI_NOTE}


def refit(checked: Checked, run: RunDir, progress: Progress, best: dict[str, int],
          metrics: dict[str, Any], cv_text: str) -> None:
    """The run's model trained on every non-test row for the mean of the folds' best
    epochs, without the callbacks that would need validation rows."""
    experiment = checked.experiment
    cfg = experiment.loaded.config
    plan = experiment.plan
    rows = np.setdiff1d(np.arange(experiment.table.n_rows, dtype=np.int64), plan.test)
    epochs = max(1, int(round(float(np.mean(list(best.values()))))))
    dropped = [cfg.callbacks[i].type for i in steering_callbacks(cfg)]
    run.update_info(model="model.keras: refit on every non-test row", refit={
        "epochs": epochs, "rows": int(len(rows)),
        "epochs_chosen_by": "the mean over folds of each fold's best epoch (lowest val_loss "
                            "on the rows that steered it), rounded",
        "best_epochs": best, "dropped_callbacks": dropped,
        "test_scored": bool(len(plan.test))})
    if run.trained:  # a resumed run interrupted after the refit's files
        metrics.update({k: v for k, v in read_json(run.metrics).items() if k == "test"})
        progress.fold_end("refit")
        return
    result = train_fold(checked, Fold("refit", rows, np.empty(0, dtype=np.int64)), run,
                        "refit", progress, epochs=epochs)
    _final_model(checked, run, result, metrics, cv_text)


def _fold(checked: Checked, fold: Fold, run: RunDir,
          progress: Progress) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """One fold's history and scores: trained and saved, or read back when a run being
    resumed finished it before."""
    place = run.fold(fold.name)
    label = f"fold {fold.name}"
    if place.trained:
        progress.fold_end(label)
        return read_history(place.history), read_json(place.metrics)
    result = train_fold(checked, fold, place, label, progress)
    write_fold_files(place, result)  # one fold's model and arrays alive at a time
    return result.history, result.metrics


def cross_validate(checked: Checked, run: RunDir, progress: Progress) -> dict[str, Any]:
    """Train every fold, write its files and the summary over folds, then refit (if asked).
    Returns the run's metrics: the mean over folds, and the refit model on the test split."""
    cfg = checked.experiment.loaded.config
    fold_scores: dict[str, dict[str, float]] = {}
    histories: list[dict[str, list[float]]] = []
    best: dict[str, int] = {}
    for fold in checked.experiment.plan.folds:
        history, scores = _fold(checked, fold, run, progress)
        fold_scores[fold.name] = scores["validation"]
        histories.append(history)
        best[fold.name] = best_epoch(history)
    summary = _cv_summary(checked, fold_scores, best)
    write_json(run.cv_summary, summary)
    averaged = mean_history(histories)
    write_history(run.cv_history, averaged)
    if cfg.output.plots:
        run.add_notes(report.plot_history(averaged, run.learning_curves,
                                          f"mean over {len(histories)} folds"))
    metrics: dict[str, Any] = {"validation": {name: entry["mean"] for name, entry
                                              in summary["metrics"].items()}}
    cv_text = report.cv_text(summary)
    if cfg.validation.refit:
        refit(checked, run, progress, best, metrics, cv_text)
    else:
        write_json(run.metrics, metrics)
        write_text(run.summary, cv_text)
        run.update_info(model=None, no_model_reason=NO_MODEL,
                        refit={"epochs": None, "best_epochs": best, "test_scored": False})
    return metrics

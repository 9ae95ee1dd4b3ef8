"""The validation schemes side by side, every fold loop in one place: the hold-out (one
model), cross-validation (one fresh model per fold into `folds/<repeat>-<fold>/`, the
summary over folds) and the refit on every non-test row that becomes the run's model.
A model whose files are complete is never trained again: that is how `resume` skips
finished work."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain.data.splits import Fold
from kerastrain.experiment import Experiment
from kerastrain.plugins import import_plugins
from kerastrain.rundir import (
    History,
    RunDir,
    read_history,
    read_json,
    write_history,
    write_json,
    write_text,
)
from kerastrain.training import report
from kerastrain.training.callbacks import steering_callbacks
from kerastrain.training.check import Checked, configure_runtime
from kerastrain.training.cvstats import CI_NOTE, best_epoch, mean_history, summarize
from kerastrain.training.fold import (
    FoldResult,
    score_test,
    train_fold,
    write_fold_files,
    write_model_files,
)
from kerastrain.training.pool import WorkerDied, WorkerPool, cores
from kerastrain.training.progress import Progress
from kerastrain.training.strategy import choose_strategy

AUTO_MAX_PARAMS = 1_000_000
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
    test = score_test(checked.experiment, result)
    if test is not None:
        metrics["test"] = test
    run.add_notes(*write_model_files(run, checked, result, metrics, extra_summary))


def holdout(checked: Checked, run: RunDir, progress: Progress,
            pool: WorkerPool | None = None) -> dict[str, Any]:
    """One model, validated on the hold-out rows, scored on the test split."""
    if run.trained:  # interrupted after its files were written
        return read_json(run.metrics)
    fold = checked.experiment.plan.folds[0]
    result = train_fold(checked.experiment, checked.strategy, fold, run, fold.name, progress,
                        start=checked.take_model(fold))
    metrics = dict(result.metrics)
    notes: list[str | None] = []
    curves = result.history if checked.experiment.loaded.config.output.plots else None
    with report.plot_beside(curves, run.learning_curves, notes):
        _final_model(checked, run, result, metrics)
    run.add_notes(*notes)
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
    result = train_fold(experiment, checked.strategy,
                        Fold("refit", rows, np.empty(0, dtype=np.int64)), run, "refit",
                        progress, epochs=epochs)
    _final_model(checked, run, result, metrics, cv_text)


@dataclass(frozen=True)
class FoldTask:
    """One fold to train in a worker process: everything it needs travels with it."""

    experiment: Experiment
    fold: Fold
    run_path: Path


def train_and_save_fold(task: FoldTask, progress: Progress) -> tuple[History, dict[str, Any]]:
    """In a worker process: the run's plugins and runtime settings, then one fold trained
    and saved; its history and scores go back to the parent."""
    loaded = task.experiment.loaded
    with loaded.at_keys():
        import_plugins(loaded.config.plugins, [Path(p) for p in loaded.config.plugin_path or []])
        configure_runtime(loaded.config.runtime)
        strategy = choose_strategy(loaded.config.runtime)
    place = RunDir(task.run_path).fold(task.fold.name)
    result = train_fold(task.experiment, strategy, task.fold, place, f"fold {task.fold.name}",
                        progress)
    write_fold_files(place, result)
    return result.history, result.metrics


def fold_workers(checked: Checked, folds: int) -> int:
    """How many folds train side by side: `runtime.workers`, or for `auto` as many as the
    cores allow on the CPU for a model of up to a million parameters, else 1 (a larger
    model, or an accelerator, keeps the machine busy with one fold)."""
    requested = checked.experiment.loaded.config.runtime.workers
    if requested != "auto":
        return max(1, min(int(requested), folds))
    on_cpu = all("CPU" in d.upper() for d in checked.strategy.devices)
    if not on_cpu or checked.n_params > AUTO_MAX_PARAMS:
        return 1
    return max(1, min(cores(), folds))


def _trained_folds(checked: Checked, run: RunDir, pool: WorkerPool,
                   progress: Progress) -> dict[str, tuple[History, dict[str, Any]]]:
    """Every fold's history and scores: read back when a resumed run finished it before,
    else trained (side by side when the pool has workers) and saved."""
    done: dict[str, tuple[History, dict[str, Any]]] = {}
    todo = []
    for fold in checked.experiment.plan.folds:
        place = run.fold(fold.name)
        if place.trained:
            progress.fold_end(f"fold {fold.name}")
            done[fold.name] = read_history(place.history), read_json(place.metrics)
        else:
            todo.append(fold)
    workers = fold_workers(checked, len(todo)) if pool.procs else 1
    if todo:
        run.update_info(workers=workers)

    def here(task: FoldTask, progress: Progress) -> tuple[History, dict[str, Any]]:
        return _train_and_save(checked, run, task.fold, progress)

    if workers > 1:
        tasks = [FoldTask(checked.experiment, fold, run.path) for fold in todo]
        # closing: an error stops the other workers before it leaves (and the run's lock)
        with closing(pool.run(train_and_save_fold, tasks, progress, here)) as outcomes:
            for outcome in outcomes:
                if isinstance(outcome.error, WorkerDied):  # the run fails; resume goes on
                    raise WorkerDied(f"fold {todo[outcome.index].name}: {outcome.error} The "
                                     "run keeps every finished fold and epoch; continue it "
                                     f"with: kerastrain resume {run.path}")
                if outcome.error is not None:
                    raise outcome.error
                done[todo[outcome.index].name] = outcome.value
        return done
    for fold in todo:
        done[fold.name] = _train_and_save(checked, run, fold, progress)
    return done


def _train_and_save(checked: Checked, run: RunDir, fold: Fold,
                    progress: Progress) -> tuple[History, dict[str, Any]]:
    """One fold trained and saved in this process; its history and scores (its model and
    arrays are let go: one fold's alive at a time)."""
    place = run.fold(fold.name)
    result = train_fold(checked.experiment, checked.strategy, fold, place,
                        f"fold {fold.name}", progress, start=checked.take_model(fold))
    write_fold_files(place, result)
    return result.history, result.metrics


def cross_validate(checked: Checked, run: RunDir, progress: Progress,
                   pool: WorkerPool) -> dict[str, Any]:
    """Train every fold, write its files and the summary over folds, then refit (if asked).
    Returns the run's metrics: the mean over folds, and the refit model on the test split."""
    cfg = checked.experiment.loaded.config
    fold_scores: dict[str, dict[str, float]] = {}
    histories: list[dict[str, list[float]]] = []
    best: dict[str, int] = {}
    trained = _trained_folds(checked, run, pool, progress)
    for fold in checked.experiment.plan.folds:
        history, scores = trained[fold.name]
        fold_scores[fold.name] = scores["validation"]
        histories.append(history)
        best[fold.name] = best_epoch(history)
    summary = _cv_summary(checked, fold_scores, best)
    write_json(run.cv_summary, summary)
    averaged = mean_history(histories)
    write_history(run.cv_history, averaged)
    metrics: dict[str, Any] = {"validation": {name: entry["mean"] for name, entry
                                              in summary["metrics"].items()}}
    cv_text = report.cv_text(summary)
    notes: list[str | None] = []
    with report.plot_beside(averaged if cfg.output.plots else None, run.learning_curves,
                            notes, f"mean over {len(histories)} folds"):
        if cfg.validation.refit:
            refit(checked, run, progress, best, metrics, cv_text)
        else:
            write_json(run.metrics, metrics)
            write_text(run.summary, cv_text)
            run.update_info(model=None, no_model_reason=NO_MODEL,
                            refit={"epochs": None, "best_epochs": best, "test_scored": False})
    run.add_notes(*notes)
    return metrics

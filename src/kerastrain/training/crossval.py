"""Cross-validation: one fresh model per fold into `folds/<repeat>-<fold>/` (history,
metrics, model and the preprocessing fitted on that fold's training rows), the summary
over folds (`cv_summary.json`, averaged learning curves), and the refit on every
non-test row that becomes the run's `model.keras`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from rich.console import Console

from kerastrain.data.splits import Fold
from kerastrain.rundir import RunDir, read_logged, trained, write_history, write_json, write_text
from kerastrain.training import report
from kerastrain.training.callbacks import progress_display, steering_callbacks
from kerastrain.training.cvstats import CI_NOTE, best_epoch, mean_history, summarize
from kerastrain.training.fit import (
    Checked,
    save_model,
    score_test,
    train_fold,
    write_model_files,
)

NO_MODEL = ("this cross-validation run kept no final model (validation.refit was false): "
            "each fold's model is in folds/<repeat>-<fold>/model.keras. Run fit again with "
            "validation.refit: true to evaluate or predict.")


@contextmanager
def _display(console: Console | None, total: int) -> Iterator[tuple[Any, Any]]:
    """One live Rich display for all folds on a terminal: (display, overall task)."""
    if console is None or not console.is_terminal:
        yield None, None
        return
    display = progress_display(console)
    overall = display.add_task("", total=total, label="all")
    display.start()
    try:
        yield display, overall
    finally:
        display.stop()


def _summary(checked: Checked, fold_scores: dict[str, dict[str, float]],
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


def _refit(checked: Checked, run: RunDir, console: Console | None, best: dict[str, int],
           metrics: dict[str, Any], cv_text: str, display: Any, overall: Any) -> None:
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
    if trained(run.path):  # a resumed run interrupted after the refit's files
        metrics.update({k: v for k, v in run.read_json("metrics.json").items() if k == "test"})
        return
    result = train_fold(checked, Fold("refit", rows, np.empty(0, dtype=np.int64)), run.path,
                        console, "refit", epochs=epochs, display=display, overall=overall)
    test = score_test(experiment, result)
    if test is not None:
        metrics["test"] = test
    run.add_notes(*write_model_files(run, experiment, result, metrics, cv_text))


def cross_validate(checked: Checked, run: RunDir, console: Console | None) -> dict[str, Any]:
    """Train every fold, write its files and the summary over folds, then refit (if asked).
    Returns the run's metrics: the mean over folds, and the refit model on the test split."""
    experiment = checked.experiment
    cfg = experiment.loaded.config
    plan = experiment.plan
    fold_scores: dict[str, dict[str, float]] = {}
    histories: list[dict[str, list[float]]] = []
    best: dict[str, int] = {}
    with _display(console, len(plan.folds) + int(cfg.validation.refit)) as (display, overall):
        for fold in plan.folds:
            out = run.sub("folds", fold.name)
            if trained(out):  # a resumed run: this fold finished before the interruption
                history = read_logged(out / "history.csv")
                scores = run.read_json(f"folds/{fold.name}/metrics.json")
                if display is not None:
                    display.advance(overall)
            else:
                result = train_fold(checked, fold, out, console, f"fold {fold.name}",
                                    display=display, overall=overall)
                history, scores = result.history, result.metrics
                write_history(out / "history.csv", history)
                write_json(out / "preprocessing.json", result.pre.to_json())
                save_model(result.model, out / "model.keras")
                write_json(out / "metrics.json", scores)  # last: marks the fold trained
                del result  # one fold's model and arrays alive at a time
            fold_scores[fold.name] = scores["validation"]
            histories.append(history)
            best[fold.name] = best_epoch(history, validation_freq=cfg.training.validation_freq)
        summary = _summary(checked, fold_scores, best)
        write_json(run.path / "cv_summary.json", summary)
        averaged = mean_history(histories)
        write_history(run.path / "cv_history.csv", averaged)
        if cfg.output.plots:
            run.add_notes(report.plot_history(averaged, run.sub("plots") / "learning_curves.png",
                                              f"mean over {len(histories)} folds"))
        metrics: dict[str, Any] = {"validation": {name: entry["mean"] for name, entry
                                                  in summary["metrics"].items()}}
        cv_text = report.cv_text(summary)
        if cfg.validation.refit:
            _refit(checked, run, console, best, metrics, cv_text, display, overall)
        else:
            write_json(run.path / "metrics.json", metrics)
            write_text(run.path / "summary.txt", cv_text)
            run.update_info(model=None, no_model_reason=NO_MODEL,
                            refit={"epochs": None, "best_epochs": best,
                                   "test_scored": False})
    return metrics

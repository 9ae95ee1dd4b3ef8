"""A fold's validation scores (metrics.json) taken from Keras's last val_* logs where they
are provably a re-score's numbers (`training/scores.py`), and re-scored otherwise: either
way, the numbers of the saved model scored again on the validation rows, to the bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import iris_config, write_config
from kerastrain.config import load_config


def _fit_counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  **changes: object) -> tuple[Path, dict, int]:
    """A holdout iris run (no test split); how many times it re-scored rows."""
    from kerastrain.training import fold
    from kerastrain.training.fit import fit

    calls = []
    real = fold.evaluate_model

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fold, "evaluate_model", counted)
    cfg = iris_config(tmp_path / "runs")
    cfg["training"] = {"epochs": 3, "batch_size": 16}
    cfg["validation"] = {"validation_split": 0.25, "test_split": 0.0}
    cfg["output"]["plots"] = False
    cfg.update(changes)
    run, metrics = fit(load_config(write_config(tmp_path / "c.yaml", cfg)))
    return Path(run.path), metrics, len(calls)


def _rescored(run_dir: Path) -> dict[str, float]:
    """The saved model scored again on the run's validation rows, as `fit` scores them."""
    from kerastrain import _keras
    from kerastrain.data.graphdata import load_preprocessor
    from kerastrain.data.sources import load_source
    from kerastrain.models.model import evaluate_model

    loaded = load_config(run_dir / "config.yaml")
    table = load_source(loaded.config.data.source, loaded.config.seed)
    pre = load_preprocessor(json.loads((run_dir / "preprocessing.json").read_text()))
    model = _keras.keras().saving.load_model(run_dir / "model.keras")
    rows = np.array(json.loads((run_dir / "splits.json").read_text())["folds"][0]["validation"])
    return evaluate_model(model, pre.transform_x(table, rows), pre.transform_y(table, rows), 16)


def test_the_last_val_logs_are_the_validation_scores(tmp_path: Path, monkeypatch) -> None:
    run_dir, metrics, rescores = _fit_counting(tmp_path, monkeypatch)
    assert rescores == 0   # the rows Keras validated on were not scored again
    kept = json.loads((run_dir / "metrics.json").read_text())["validation"]
    rescored = _rescored(run_dir)
    assert kept == metrics["validation"] == rescored   # to the bit
    assert list(metrics["validation"]) == list(rescored)   # in evaluate's order


@pytest.mark.parametrize("changes", [
    {"callbacks": [{"type": "EarlyStopping", "patience": 5, "restore_best_weights": True}]},
    {"training": {"epochs": 3, "batch_size": 16, "validation_freq": 2}},
    {"compile": {"optimizer": {"type": "Adam", "learning_rate": 0.02, "use_ema": True},
                 "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}},
], ids=["restore_best_weights", "last_epoch_not_validated", "use_ema"])
def test_rows_are_scored_again_where_the_logs_may_differ(tmp_path: Path, monkeypatch,
                                                         changes: dict) -> None:
    run_dir, metrics, rescores = _fit_counting(tmp_path, monkeypatch, **changes)
    assert rescores == 1
    kept = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert kept == _rescored(run_dir)

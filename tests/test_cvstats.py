"""Cross-validation arithmetic: mean, sample std, Student's t interval, best epochs, and
curves averaged over folds of different lengths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerastrain.training.cvstats import best_epoch, describe, mean_history, summarize


def test_describe_uses_the_sample_std_and_students_t() -> None:
    values = [1.0, 2.0, 4.0]
    entry = describe(values)
    std = math.sqrt(sum((v - 7 / 3) ** 2 for v in values) / 2)
    assert entry["mean"] == pytest.approx(7 / 3)
    assert entry["std"] == pytest.approx(std)
    half = 4.302652729911275 * std / math.sqrt(3)  # t(0.975, 2)
    assert entry["ci95"] == pytest.approx([7 / 3 - half, 7 / 3 + half])
    assert describe([5.0]) == {"mean": 5.0, "std": None, "ci95": None, "n": 1}


def test_summarize_keeps_every_fold_and_metric() -> None:
    summary = summarize({"0-0": {"loss": 1.0, "mae": 3.0}, "0-1": {"loss": 2.0, "mae": 5.0}})
    assert summary["mae"]["per_fold"] == {"0-0": 3.0, "0-1": 5.0}
    assert summary["loss"]["mean"] == 1.5 and summary["mae"]["n"] == 2


def test_best_epoch_follows_the_steering_loss() -> None:
    assert best_epoch({"loss": [5, 4, 3, 2], "val_loss": [4, 2, 3, 5]}) == 2
    assert best_epoch({"loss": [5, 4, 3, 2]}) == 4
    assert best_epoch({"loss": [5, 4, 3, 2], "val_loss": [4, 3]}, validation_freq=2) == 4


def test_mean_history_averages_the_folds_that_reached_each_epoch() -> None:
    mean = mean_history([{"loss": [4.0, 2.0, 1.0]}, {"loss": [2.0, 1.0]}])
    assert mean["loss"] == [3.0, 1.5, 1.0]
    assert mean["folds"] == [2.0, 2.0, 1.0]
    assert not np.isnan(mean["loss"]).any()

"""Cross-validation arithmetic: mean, sample std, Student's t interval, best epochs, and
curves averaged over folds of different lengths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerastrain.training.cvstats import (
    best_epoch,
    describe,
    mean_history,
    metric_range,
    summarize,
)


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


def test_the_interval_stays_in_the_metrics_range() -> None:
    """Accuracy 0.99 +- a wide interval never prints 1.0098, nor a loss -0.0055: clipped,
    and recorded as clipped."""
    summary = summarize({"0": {"accuracy": 1.0, "loss": 0.001, "r2": 0.5},
                         "1": {"accuracy": 0.96, "loss": 0.02, "r2": 0.9},
                         "2": {"accuracy": 1.0, "loss": 0.0005, "r2": 0.1}})
    assert summary["accuracy"]["ci95"][1] == 1.0 and summary["accuracy"]["ci95_clipped"]
    assert summary["loss"]["ci95"][0] == 0.0 and summary["loss"]["ci95_clipped"]
    assert "ci95_clipped" not in summary["r2"]  # no known range: never clipped
    assert summary["r2"]["ci95"][0] < 0.0
    unclipped = describe([0.5, 0.6, 0.55], metric_range("val_accuracy"))
    assert "ci95_clipped" not in unclipped
    assert metric_range("out_a_sparse_categorical_accuracy") == (0.0, 1.0)
    assert metric_range("mean_absolute_error") == (0.0, math.inf)
    negative_loss = describe([-0.9, -0.5, -0.95], metric_range("loss"))  # cosine similarity
    assert "ci95_clipped" not in negative_loss and negative_loss["ci95"][1] < 0

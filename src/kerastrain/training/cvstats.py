"""Cross-validation arithmetic: per-metric mean, sample standard deviation and 95%
confidence interval over folds, each fold's best epoch, and learning curves averaged
across folds. Plain NumPy and SciPy: no TensorFlow."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CI_NOTE = ("std is the sample standard deviation (ddof=1); ci95 is mean +- t(0.975, n-1) * "
           "std / sqrt(n), clipped to the metric's range where it would pass it (accuracy, "
           "AUC, precision, recall, F1 in [0, 1]; losses and errors >= 0; marked * and "
           "ci95_clipped: true). Folds share training rows (and repeats share all rows), so "
           "their scores are correlated and the interval is narrower than the truth.")

_UNIT = ("accuracy", "auc", "precision", "recall", "f1", "fbeta", "iou", "true_positives_rate")
_NON_NEGATIVE = ("loss", "error", "crossentropy", "hinge", "poisson", "log_cosh", "huber",
                 "divergence", "mse", "mae", "mape", "msle", "rmse")


def metric_range(name: str) -> tuple[float, float]:
    """The values a metric can take, from its name as Keras logs it (`accuracy`,
    `out_a_loss`, `val_auc_1`); unbounded when the name says nothing known."""
    lowered = name.lower()
    if any(word in lowered for word in _UNIT):
        return 0.0, 1.0
    if any(word in lowered for word in _NON_NEGATIVE):
        return 0.0, math.inf
    return -math.inf, math.inf


def describe(values: list[float], bounds: tuple[float, float] = (-math.inf, math.inf)
             ) -> dict[str, Any]:
    """Mean, sample std (ddof=1) and Student's t 95% interval of the mean, clipped to
    `bounds` (the metric's range; `ci95_clipped` says when it was). Bounds the values
    themselves pass are not the metric's (a loss can be negative: cosine similarity).
    The t quantile comes from `scipy.special`, as `scipy.stats.t.ppf` computes it,
    without importing `scipy.stats`."""
    from scipy import special

    data = np.asarray(values, dtype=np.float64)
    n = len(data)
    mean = float(np.mean(data))
    if n < 2:
        return {"mean": mean, "std": None, "ci95": None, "n": n}
    std = float(np.std(data, ddof=1))
    half = float(special.stdtrit(n - 1, 0.975)) * std / math.sqrt(n)
    if np.any(data < bounds[0]) or np.any(data > bounds[1]):
        bounds = (-math.inf, math.inf)
    low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
    entry = {"mean": mean, "std": std, "ci95": [low, high], "n": n}
    if (low, high) != (mean - half, mean + half):
        entry["ci95_clipped"] = True
    return entry


def summarize(fold_scores: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """For every metric: its value per fold, then `describe` of those values."""
    names = [m for scores in fold_scores.values() for m in scores]
    metrics: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(names):
        per_fold = {fold: scores[name] for fold, scores in fold_scores.items()
                    if name in scores}
        metrics[name] = {"per_fold": per_fold,
                         **describe(list(per_fold.values()), metric_range(name))}
    return metrics


def best_epoch(history: dict[str, list[float]], monitor: str = "val_loss",
               validation_freq: int = 1) -> int:
    """The 1-based epoch of the lowest `monitor` (the steering quantity), else the last.
    Keras logs validation every `validation_freq` epochs only."""
    epochs = len(history.get("loss", [])) or 1
    values = np.asarray(history.get(monitor, []), dtype=np.float64)
    if not values.size or np.isnan(values).all():
        return epochs
    best = int(np.nanargmin(values)) + 1
    return min(best * validation_freq, epochs) if values.size < epochs else best


def mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per epoch, the mean of each logged quantity over the folds that reached that epoch
    (early stopping ends folds at different epochs); `folds` counts them."""
    keys = list(dict.fromkeys(k for h in histories for k in h))
    length = max((len(v) for h in histories for v in h.values()), default=0)
    mean: dict[str, list[float]] = {}
    for key in keys:
        grid = np.full((len(histories), length), np.nan)
        for i, h in enumerate(histories):
            values = h.get(key, [])
            grid[i, : len(values)] = values
        with np.errstate(all="ignore"):
            counts = np.sum(~np.isnan(grid), axis=0)
            sums = np.nansum(grid, axis=0)
            mean[key] = [float(s / c) if c else float("nan") for s, c in zip(sums, counts,
                                                                              strict=True)]
    mean["folds"] = [float(sum(1 for h in histories if len(h.get("loss", [])) > e))
                     for e in range(length)]
    return mean

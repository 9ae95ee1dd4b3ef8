"""Cross-validation arithmetic: per-metric mean, sample standard deviation and 95%
confidence interval over folds, each fold's best epoch, and learning curves averaged
across folds. Plain NumPy and SciPy: no TensorFlow."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CI_NOTE = ("std is the sample standard deviation (ddof=1); ci95 is mean +- t(0.975, n-1) * "
           "std / sqrt(n). Folds share training rows (and repeats share all rows), so their "
           "scores are correlated and the interval is narrower than the truth.")


def describe(values: list[float]) -> dict[str, Any]:
    """Mean, sample std (ddof=1) and Student's t 95% interval of the mean (the quantile
    from `scipy.special`, as `scipy.stats.t.ppf` computes it, without importing stats)."""
    from scipy import special

    data = np.asarray(values, dtype=np.float64)
    n = len(data)
    mean = float(np.mean(data))
    if n < 2:
        return {"mean": mean, "std": None, "ci95": None, "n": n}
    std = float(np.std(data, ddof=1))
    half = float(special.stdtrit(n - 1, 0.975)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": n}


def summarize(fold_scores: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """For every metric: its value per fold, then `describe` of those values."""
    names = [m for scores in fold_scores.values() for m in scores]
    metrics: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(names):
        per_fold = {fold: scores[name] for fold, scores in fold_scores.items()
                    if name in scores}
        metrics[name] = {"per_fold": per_fold, **describe(list(per_fold.values()))}
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

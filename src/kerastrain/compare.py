"""Paired comparison of two cross-validation runs scored on identical folds.

Both runs must have been scored on the same rows (the same `splits.json`), so each fold
gives one paired difference d_j = B - A. Folds share training rows, so those differences
are correlated and the plain paired t-test is overconfident; the corrected resampled
t-test of Nadeau and Bengio (2003) inflates the variance by n_test/n_train. See
docs/compare.md. Plain NumPy and SciPy: no TensorFlow.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from kerastrain.errors import RunDirError, UserError, did_you_mean
from kerastrain.rundir import RunDir, read_json

Direction = Literal["lower", "higher"]

# Names (or name parts) of metrics where lower is better, and where higher is better.
_LOWER_PARTS = ("loss", "error", "crossentropy", "hinge", "divergence", "logcosh", "huber",
                "poisson")
_LOWER_TOKENS = {"mse", "mae", "mape", "msle", "rmse", "kld"}
_HIGHER_PARTS = ("accuracy", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2",
                 "true_positives", "true_negatives")
LEVEL = 0.05
# Two scores closer than this (relative) are the same score: float32 metrics written and
# read back differ by a few units in the last place (1.2e-08 on an accuracy of 0.93).
SAME_SCORE = 1e-6


class CompareError(UserError):
    """Two runs that cannot be compared fold by fold, or a metric they lack."""


def metric_direction(name: str) -> tuple[Direction, bool]:
    """Whether lower or higher values of metric `name` are better, and whether that was
    recognised from the name (False: an unknown metric, assumed lower is better)."""
    lowered = name.lower()
    tokens = set(re.split(r"[^a-z0-9]+", lowered))
    if any(part in lowered for part in _LOWER_PARTS) or tokens & _LOWER_TOKENS:
        return "lower", True
    if any(part in lowered for part in _HIGHER_PARTS):
        return "higher", True
    return "lower", False


@dataclass(frozen=True)
class CvRun:
    """What a comparison reads from one completed cross-validation run."""

    path: Path
    summary: dict[str, Any]
    splits: dict[str, Any]

    @property
    def label(self) -> str:
        return self.path.name


def read_cv_run(path: str | Path) -> CvRun:
    """A completed cross-validation run's cv_summary.json and splits.json, or an error
    saying why the run cannot be compared."""
    run = RunDir(Path(path))
    path = run.path
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory.")
    if not run.info_file.is_file():
        raise RunDirError(f"{path}: not a kerastrain run directory (no run.json).")
    status = run.info().get("status")
    if status != "completed":
        raise RunDirError(f"{path}: the run is {status!r}; only completed runs can be "
                          "compared (resume it with kerastrain resume, or run it again).")
    if not run.cv_summary.is_file():
        raise RunDirError(f"{path}: not a cross-validation run (no cv_summary.json), so it has "
                          "no per-fold scores to pair. Compare runs made with "
                          "validation.scheme kfold or repeated_kfold.")
    if not run.splits.is_file():
        raise RunDirError(f"{path}: has no splits.json, so its folds cannot be matched.")
    return CvRun(path, read_json(run.cv_summary), read_json(run.splits))


def check_same_folds(a: CvRun, b: CvRun) -> None:
    """Refuse unless both runs scored the same rows in the same folds: the same test split,
    fold names, and each fold's training and scored rows."""
    where = f"{a.label} and {b.label}"
    if sorted(a.splits.get("test", [])) != sorted(b.splits.get("test", [])):
        raise CompareError(f"{where} set aside different test splits, so their folds hold "
                           "different rows: a paired comparison needs identical splits "
                           "(the same data, validation.seed, scheme, n_splits and test_split).")
    folds_a = {f["name"]: f for f in a.splits.get("folds", [])}
    folds_b = {f["name"]: f for f in b.splits.get("folds", [])}
    names_a, names_b = list(a.summary.get("folds", [])), list(b.summary.get("folds", []))
    if list(folds_a) != list(folds_b) or names_a != names_b:
        raise CompareError(f"{where} have different folds ({', '.join(names_a)} vs "
                           f"{', '.join(names_b)}): a paired comparison needs the same "
                           "scheme, n_splits and n_repeats.")
    for name, fold in folds_a.items():
        other = folds_b[name]
        for part in ("train", "validation"):
            if sorted(fold.get(part, [])) != sorted(other.get(part, [])):
                raise CompareError(
                    f"{where} split the rows differently: fold {name} has different "
                    f"{part} rows. A paired comparison needs identical splits (the same "
                    "data, validation.seed, shuffle, stratify and groups); see splits.json.")


def _per_fold(run: CvRun, metric: str, common: list[str]) -> dict[str, float]:
    entry = run.summary["metrics"].get(metric)
    if entry is None:
        available = sorted(run.summary.get("metrics", {}))
        raise CompareError(f"{run.label} has no metric {metric!r}."
                           f"{did_you_mean(metric, available)} Metrics of both runs: "
                           f"{', '.join(common) or 'none'}.")
    return {fold: float(value) for fold, value in entry["per_fold"].items()}


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of metric `metric` between runs A and B (d = B - A)."""

    run_a: str
    run_b: str
    metric: str
    direction: Direction
    direction_known: bool
    folds: list[str]
    a: list[float]
    b: list[float]
    differences: list[float]
    mean_a: float
    mean_b: float
    mean_difference: float
    std_difference: float
    n_train: float
    n_test: float
    test_train_ratio: float
    standard_error: float
    t: float | None
    dof: int
    p_value: float | None
    ci95: list[float]
    better: Literal["A", "B"] | None
    significant: bool
    statement: str

    @property
    def decimals(self) -> int:
        """The one number of decimals for every score and difference shown: 4, or more
        where the smallest difference needs them to show two significant digits."""
        gaps = [abs(d) for d in (*self.differences, *self.ci95, self.mean_difference) if d]
        return min(10, max(4, 1 - math.floor(math.log10(min(gaps))))) if gaps else 4

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "test": "corrected resampled t-test (Nadeau and Bengio, 2003)",
                "level": LEVEL}


def fold_sizes(splits: dict[str, Any]) -> tuple[float, float, float]:
    """Mean training rows, mean scored rows, and the mean over folds of their ratio
    n_test/n_train (training rows: the splitter's, inner validation rows included)."""
    folds = splits["folds"]
    n_train = [len(f["train"]) for f in folds]
    n_test = [len(f["validation"]) for f in folds]
    ratio = sum(t / n for t, n in zip(n_test, n_train, strict=True)) / len(folds)
    return sum(n_train) / len(folds), sum(n_test) / len(folds), ratio


def corrected_t_test(differences: list[float], ratio: float) -> dict[str, Any]:
    """Nadeau and Bengio's corrected resampled t-test of mean(d) = 0.

    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d, ddof=1)), two-sided p from
    Student's t with J - 1 degrees of freedom, and the 95% interval of the mean difference
    with the same standard error. With zero variance the test is undefined (t and p None)
    unless every difference is 0 (t = 0, p = 1). Student's t from `scipy.special` (what
    `scipy.stats.t` calls), which imports in half the time of `scipy.stats`."""
    from scipy import special

    j = len(differences)
    mean = math.fsum(differences) / j
    constant = max(differences) == min(differences)  # rounding would leave var at ~1e-33
    var = 0.0 if constant else math.fsum((d - mean) ** 2 for d in differences) / (j - 1)
    se = math.sqrt((1 / j + ratio) * var)
    dof = j - 1
    if se > 0:
        t = mean / se
        p = float(2 * special.stdtr(dof, -abs(t)))
        half = float(special.stdtrit(dof, 1 - LEVEL / 2)) * se
        return {"mean": mean, "std": math.sqrt(var), "se": se, "t": t, "dof": dof, "p": p,
                "ci95": [mean - half, mean + half]}
    identical = mean == 0
    return {"mean": mean, "std": 0.0, "se": 0.0, "t": 0.0 if identical else None, "dof": dof,
            "p": 1.0 if identical else None, "ci95": [mean, mean]}


def compare_runs(run_a: str | Path, run_b: str | Path, metric: str = "loss",
                 direction: Direction | None = None) -> Comparison:
    """Compare `metric` of two cross-validation runs fold by fold (d = B - A).

    `direction` says whether lower or higher is better; by default it follows the
    metric's name (`metric_direction`)."""
    if Path(run_a).resolve() == Path(run_b).resolve():
        raise CompareError(f"A and B are the same run ({run_a}): a paired comparison needs "
                           "two different runs scored on the same folds.")
    a, b = read_cv_run(run_a), read_cv_run(run_b)
    check_same_folds(a, b)
    common = sorted(set(a.summary["metrics"]) & set(b.summary["metrics"]))
    values_a, values_b = _per_fold(a, metric, common), _per_fold(b, metric, common)
    folds = list(a.summary["folds"])
    missing = [f for f in folds if f not in values_a or f not in values_b]
    if missing:
        raise CompareError(f"{metric!r} has no value for fold {', '.join(missing)} in one of "
                           "the runs.")
    if len(folds) < 2:
        raise CompareError("a paired test needs at least 2 folds.")
    if direction is None:
        direction, known = metric_direction(metric)
    else:
        known = True
    xs, ys = [values_a[f] for f in folds], [values_b[f] for f in folds]
    diffs = [0.0 if math.isclose(x, y, rel_tol=SAME_SCORE, abs_tol=1e-12) else y - x
             for x, y in zip(xs, ys, strict=True)]
    n_train, n_test, ratio = fold_sizes(a.splits)
    test = corrected_t_test(diffs, ratio)
    better: Literal["A", "B"] | None = None
    if test["mean"] != 0:
        b_better = test["mean"] < 0 if direction == "lower" else test["mean"] > 0
        better = "B" if b_better else "A"
    significant = test["p"] is not None and test["p"] < LEVEL
    comparison = Comparison(
        run_a=str(a.path), run_b=str(b.path), metric=metric, direction=direction,
        direction_known=known, folds=folds, a=xs, b=ys, differences=diffs,
        mean_a=math.fsum(xs) / len(xs), mean_b=math.fsum(ys) / len(ys),
        mean_difference=test["mean"], std_difference=test["std"], n_train=n_train,
        n_test=n_test, test_train_ratio=ratio, standard_error=test["se"], t=test["t"],
        dof=test["dof"], p_value=test["p"], ci95=test["ci95"], better=better,
        significant=significant, statement="")
    return _with_statement(comparison, a.label, b.label)


def _with_statement(c: Comparison, label_a: str, label_b: str) -> Comparison:
    """The result in plain words: which run is better, by how much, how sure."""
    sense = "lower" if c.direction == "lower" else "higher"
    assumed = ("" if c.direction_known else
               f" ({c.metric!r} is not a metric kerastrain knows: assumed lower is better; "
               "pass --direction to say otherwise)")
    head = f"On {c.metric} ({sense} is better{assumed}), over {len(c.folds)} paired folds:"
    if c.better is None:
        same = "exactly the same" if c.a == c.b else \
            "the same (within floating-point rounding)"
        return replace(c, statement=f"{head} A ({label_a}) and B ({label_b}) score {same} on "
                                    "every fold: no difference.")
    winner, loser = (label_b, label_a) if c.better == "B" else (label_a, label_b)
    n = c.decimals
    gap = abs(c.mean_difference)
    interval = f"95% interval of B - A: {c.ci95[0]:+.{n}f} .. {c.ci95[1]:+.{n}f}"
    text = (f"{head} {c.better} ({winner}) is better than {'A' if c.better == 'B' else 'B'} "
            f"({loser}) by {gap:.{n}f} on average (mean {c.metric} A {c.mean_a:.{n}f}, "
            f"B {c.mean_b:.{n}f}; {interval}).")
    if c.p_value is None:
        text += (f" Every fold differs by the same {gap:.{n}f}, so the t-test is undefined "
                 "(zero variance) and no p-value is given.")
    elif c.significant:
        text += (f" Corrected t = {c.t:.3f}, p = {c.p_value:.3g}: the difference is "
                 "significant at the 5% level.")
    else:
        text += (f" Corrected t = {c.t:.3f}, p = {c.p_value:.3g}: the runs are not "
                 "distinguishable at the 5% level.")
    return replace(c, statement=text)

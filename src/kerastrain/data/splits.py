"""Splitting rows: a test split set aside first, then one or more (train, validation) folds.

Every scheme yields the same `SplitPlan`, so training loops over `plan.folds` whatever
the scheme; indices always point into the one loaded table (no copies of the data).

How K-fold indices are made, so that anyone can reproduce them with scikit-learn:
`rows` are the non-test row indices, ascending (under `time_order`, sorted by the time
column, stably); the splitter is called as `splitter.split(np.zeros((len(rows), 1)),
labels[rows], groups[rows])` (labels only when stratifying, groups only when grouping) and
each returned position `p` becomes the row `rows[p]`. `SplitPlan.splitter` names the
splitter and its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kerastrain.config.schema import DEFAULT_REPEATS, DEFAULT_SPLITS, ValidationSpec
from kerastrain.data.plan import EMPTY as _EMPTY
from kerastrain.data.plan import Fold, SplitPlan
from kerastrain.errors import KeyProblem

__all__ = ["Fold", "RowContext", "SplitPlan", "check_scheme", "make_splits"]



@dataclass(frozen=True)
class RowContext:
    """What splitting may use besides row counts: class labels (classification only),
    group ids, and the rows sorted by time (None: no time order)."""

    labels: np.ndarray | None = None
    groups: np.ndarray | None = None
    time_rows: np.ndarray | None = None

    @property
    def timed(self) -> bool:
        return self.time_rows is not None


def _key(name: str) -> tuple[str, str]:
    return ("validation", name)


def check_scheme(spec: ValidationSpec, ctx: RowContext) -> bool:
    """Combinations that cannot work, each reported at its key. Returns whether to shuffle."""
    shuffle = spec.shuffle if spec.shuffle is not None else not ctx.timed
    if spec.scheme == "holdout":
        for name in ("n_splits", "n_repeats"):
            if getattr(spec, name) is not None:
                raise KeyProblem(_key(name), f"{name} applies to the kfold and repeated_kfold "
                                 "schemes; this one is 'holdout'. Remove it, or set "
                                 "validation.scheme.")
        if spec.validation_split == 0:
            raise KeyProblem(_key("validation_split"), "a holdout scheme needs validation rows; "
                             "give a validation_split above 0 (e.g. 0.2).")
    if spec.scheme == "kfold" and spec.n_repeats is not None:
        raise KeyProblem(_key("n_repeats"), "n_repeats needs scheme: repeated_kfold.")
    if ctx.timed:
        if spec.shuffle:
            raise KeyProblem(_key("shuffle"), "rows in time order cannot be shuffled: that "
                             "would put the future into the training rows of the past. Remove "
                             "shuffle, or drop time_order.")
        if spec.scheme == "repeated_kfold":
            raise KeyProblem(_key("scheme"), "repeated_kfold reshuffles the rows each repeat, "
                             "which time_order forbids; use scheme: kfold (TimeSeriesSplit).")
        if spec.groups is not None:
            raise KeyProblem(_key("groups"), "groups and time_order cannot be combined "
                             "(TimeSeriesSplit ignores groups). Keep one of them.")
        if spec.stratify is True:
            raise KeyProblem(_key("stratify"), "stratifying reorders rows, which time_order "
                             "forbids. Set stratify: false or drop time_order.")
    if spec.scheme == "repeated_kfold" and spec.shuffle is False:
        raise KeyProblem(_key("shuffle"), "repeated_kfold without shuffling repeats the same "
                         "folds. Remove shuffle: false, or use scheme: kfold.")
    if spec.stratify is True and ctx.labels is None:
        raise KeyProblem(_key("stratify"), "stratifying needs a classification target.")
    return shuffle


# -- setting rows aside (test split, holdout validation, inner validation) ------------------

def _stratify_labels(labels: np.ndarray | None, stratify: bool | str,
                     fraction: float, n: int, what: str) -> np.ndarray | None:
    """The labels to stratify on, or None; an error when stratifying cannot work."""
    if labels is None or stratify is False:
        return None
    values, counts = np.unique(labels.astype(str), return_counts=True)
    n_split = int(np.ceil(fraction * n))
    too_small = counts.min() < 2 or n_split < len(values) or n - n_split < len(values)
    if too_small:
        if stratify is True:
            raise KeyProblem(
                ("validation", "stratify"), f"cannot stratify the {what} split: the smallest class "
                f"({str(values[counts.argmin()])!r}) has {counts.min()} rows and the split holds "
                f"{n_split} of {n} rows for {len(values)} classes. Use a larger split, or set "
                "stratify: false.")
        return None
    return labels.astype(str)


def _set_aside(rows: np.ndarray, fraction: float, ctx: RowContext, spec: ValidationSpec,
               shuffle: bool, seed: int, what: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(kept, set aside): the latest rows under time order, whole groups when grouping,
    else scikit-learn's `train_test_split` (stratified where it can be)."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    n = len(rows)
    n_out = int(np.ceil(fraction * n))
    if n_out < 1 or n - n_out < 1:
        raise KeyProblem(_key(key), f"a {what} split of {fraction:g} of {n} rows "
                         f"leaves {n_out} {what} and {n - n_out} other rows; both need one.")
    if ctx.timed:
        return rows[: n - n_out], rows[n - n_out:]
    labels = None if ctx.labels is None else ctx.labels[rows]
    strat = _stratify_labels(labels, spec.stratify, fraction, n, what)
    if ctx.groups is not None:
        groups = ctx.groups[rows]
        if len(np.unique(groups.astype(str))) < 2:
            raise KeyProblem(_key("groups"), f"the {what} split needs at least two groups; "
                             f"these {n} rows hold one.")
        if strat is not None:
            splits = max(2, round(1 / fraction))
            _check_group_count(groups, splits, fraction, what, key)
            splitter = StratifiedGroupKFold(splits, shuffle=True, random_state=seed)
        else:
            splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        try:
            keep, out = next(splitter.split(np.zeros((n, 1)), strat, groups))
        except ValueError as exc:  # scikit-learn's own checks, worded for its arguments
            raise KeyProblem(_key(key), f"cannot set whole groups aside for the {what} split "
                             f"({fraction:g} of {n} rows): {exc}") from None
        return np.sort(rows[keep]), np.sort(rows[out])
    keep, out = train_test_split(rows, test_size=n_out, shuffle=shuffle,
                                 random_state=seed if shuffle else None,
                                 stratify=strat if shuffle else None)
    return np.sort(keep), np.sort(out)


def _check_group_count(groups: np.ndarray, splits: int, fraction: float, what: str,
                       key: str) -> None:
    """A stratified grouped split of `fraction` is one fold of StratifiedGroupKFold(`splits`),
    which needs a group per fold."""
    n_groups = len(np.unique(groups.astype(str)))
    if n_groups < splits:
        raise KeyProblem(_key(key), f"a stratified grouped {what} split of {fraction:g} is one "
                         f"fold of StratifiedGroupKFold(n_splits={splits}), which needs at least "
                         f"{splits} groups, but these rows hold {n_groups}. Use a split of at "
                         f"least {1 / n_groups:.2f}, more groups, or validation.stratify: false "
                         "(whole groups set aside without stratifying).")


# -- K-fold ------------------------------------------------------------------------------

def _fold_labels(ctx: RowContext, rows: np.ndarray, spec: ValidationSpec,
                 n_splits: int, notes: list[str]) -> np.ndarray | None:
    if ctx.labels is None or spec.stratify is False or ctx.timed:
        return None
    labels = ctx.labels[rows].astype(str)
    values, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_splits:
        smallest = f"the smallest class ({str(values[counts.argmin()])!r}) has {counts.min()} rows"
        if spec.stratify is True:
            raise KeyProblem(_key("n_splits"), f"{n_splits} stratified folds need at least "
                             f"{n_splits} rows of every class, but {smallest} outside the test "
                             "split. Use fewer folds, or set stratify: false.")
        notes.append(f"folds are not stratified: {smallest}, fewer than {n_splits} folds.")
        return None
    return labels


def _splitters(spec: ValidationSpec, n_splits: int, n_repeats: int, shuffle: bool, seed: int,
               stratified: bool, grouped: bool, timed: bool) -> list[Any]:
    """One scikit-learn splitter per repeat (repeated splitters: one for all repeats)."""
    from sklearn import model_selection as ms

    state = seed if shuffle else None
    if timed:
        return [ms.TimeSeriesSplit(n_splits=n_splits)]
    if grouped:
        # scikit-learn has no repeated grouped splitter: repeat r shuffles with seed + r.
        cls = ms.StratifiedGroupKFold if stratified else ms.GroupKFold
        if spec.scheme == "repeated_kfold":
            return [cls(n_splits=n_splits, shuffle=True, random_state=seed + r)
                    for r in range(n_repeats)]
        return [cls(n_splits=n_splits, shuffle=shuffle, random_state=state)]
    if spec.scheme == "repeated_kfold":
        cls = ms.RepeatedStratifiedKFold if stratified else ms.RepeatedKFold
        return [cls(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)]
    cls = ms.StratifiedKFold if stratified else ms.KFold
    return [cls(n_splits=n_splits, shuffle=shuffle, random_state=state)]


def _kfold(rows: np.ndarray, ctx: RowContext, spec: ValidationSpec, shuffle: bool,
           seed: int) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], str, int, int, list[str]]:
    n_splits = spec.n_splits or DEFAULT_SPLITS
    n_repeats = (spec.n_repeats or DEFAULT_REPEATS) if spec.scheme == "repeated_kfold" else 1
    n = len(rows)
    notes: list[str] = []
    needed = n_splits + 1 if ctx.timed else n_splits
    if needed > n:
        raise KeyProblem(_key("n_splits"), f"{n_splits} folds need at least {needed} rows, "
                         f"but {n} rows are left after the test split. Use fewer folds.")
    groups = None if ctx.groups is None else ctx.groups[rows]
    if groups is not None:
        n_groups = len(np.unique(groups.astype(str)))
        if n_splits > n_groups:
            raise KeyProblem(_key("n_splits"), f"{n_splits} grouped folds need at least "
                             f"{n_splits} groups, but the rows outside the test split hold "
                             f"{n_groups}. Use fewer folds.")
    labels = _fold_labels(ctx, rows, spec, n_splits, notes)
    splitters = _splitters(spec, n_splits, n_repeats, shuffle, seed, labels is not None,
                           groups is not None, ctx.timed)
    folds = []
    x = np.zeros((n, 1))
    for r, splitter in enumerate(splitters):
        for i, (train, val) in enumerate(splitter.split(x, labels, groups)):
            repeat, fold = (i // n_splits, i % n_splits) if len(splitters) == 1 else (r, i)
            folds.append((f"{repeat}-{fold}", rows[train], rows[val]))
    described = ", ".join(repr(s) for s in splitters)
    if ctx.timed:
        notes.append("time order: each fold validates on rows later than all its training "
                     "rows; the earliest rows are never validated on.")
    return folds, described, n_splits, n_repeats, notes


def make_splits(n_rows: int, labels: np.ndarray | None, spec: ValidationSpec,
                seed: int, groups: np.ndarray | None = None,
                time_rows: np.ndarray | None = None,
                usable: np.ndarray | None = None) -> SplitPlan:
    """The test split (if any), then the folds of `spec.scheme`.

    `labels` are the class labels of a classification target (None for regression); they
    only steer stratification. `groups` holds one group id per row; `time_rows` are the row
    indices sorted by time; `usable`, the rows that may be split (None: all; rows without
    a target are not). `spec.seed`, when given, replaces `seed`.
    """
    ctx = RowContext(labels, groups, time_rows)
    seed = spec.seed if spec.seed is not None else seed
    shuffle = check_scheme(spec, ctx)
    rows = time_rows.astype(np.int64) if ctx.timed else np.arange(n_rows, dtype=np.int64)
    if usable is not None:
        rows = rows[np.isin(rows, usable)]
    test = _EMPTY
    if spec.test_split > 0:
        rows, test = _set_aside(rows, spec.test_split, ctx, spec, shuffle, seed, "test",
                                "test_split")
    if spec.scheme == "holdout":
        train, validation = _set_aside(rows, spec.validation_split, ctx, spec, shuffle,
                                       seed + 1, "validation", "validation_split")
        return SplitPlan(spec.scheme, test, [Fold("holdout", train, validation)])
    made, splitter, n_splits, n_repeats, notes = _kfold(rows, ctx, spec, shuffle, seed)
    folds = []
    for i, (name, train, validation) in enumerate(made):
        inner = _EMPTY
        if spec.validation_split > 0:
            _, inner = _set_aside(train, spec.validation_split, ctx, spec, shuffle,
                                  seed + 1 + i, f"inner validation (fold {name})",
                                  "validation_split")
        folds.append(Fold(name, train, validation, inner))
    return SplitPlan(spec.scheme, test, folds, splitter, n_splits, n_repeats, tuple(notes))

"""The split invariants every validation scheme keeps, shared by the tests of splits and of
whole cross-validation runs."""

from __future__ import annotations

import numpy as np

from kerastrain.data.splits import SplitPlan


def assert_valid_plan(plan: SplitPlan, n_rows: int, groups: np.ndarray | None = None,
                      time_rows: np.ndarray | None = None) -> None:
    """The invariants every scheme keeps (as scikit-learn's check_cv_coverage): the test
    split never enters a fold; in a fold, training, inner and scored rows never overlap
    (inner rows are part of the training rows); the folds of one repeat never overlap and
    cover every non-test row once (under time order: score only rows later than all their
    training rows); groups never straddle a split."""
    everything = np.arange(n_rows)
    rest = np.setdiff1d(everything, plan.test)
    assert len(np.unique(plan.test)) == len(plan.test)
    repeats: dict[str, list[np.ndarray]] = {}
    for fold in plan.folds:
        for part in (fold.train, fold.validation, fold.inner):
            assert len(np.unique(part)) == len(part), f"{fold.name}: repeated rows"
            assert not np.intersect1d(part, plan.test).size, f"{fold.name}: a test row"
        assert not np.intersect1d(fold.train, fold.validation).size
        assert np.isin(fold.inner, fold.train).all()
        assert not np.intersect1d(fold.fit_rows, fold.inner).size
        assert len(fold.fit_rows) + len(fold.inner) == len(fold.train)
        if time_rows is None:
            assert np.array_equal(np.sort(np.concatenate([fold.train, fold.validation])), rest)
        else:
            position = np.empty(n_rows, dtype=np.int64)
            position[time_rows] = np.arange(n_rows)
            assert position[fold.train].max() < position[fold.validation].min()
            if len(fold.inner):
                assert position[fold.fit_rows].max() < position[fold.inner].min()
        if groups is not None:
            for a, b in ((fold.train, fold.validation), (fold.fit_rows, fold.inner)):
                assert not np.intersect1d(groups[a], groups[b]).size, f"{fold.name}: a group"
        repeats.setdefault(fold.name.split("-")[0], []).append(fold.validation)
    if groups is not None and len(plan.test):
        assert not np.intersect1d(groups[plan.test], groups[rest]).size
    if time_rows is not None and len(plan.test):
        position = np.empty(n_rows, dtype=np.int64)
        position[time_rows] = np.arange(n_rows)
        assert position[rest].max() < position[plan.test].min()
    if plan.scheme == "holdout":
        return
    for scored in repeats.values():
        joined = np.concatenate(scored)
        assert len(np.unique(joined)) == len(joined), "folds of one repeat overlap"
        if time_rows is None:
            assert np.array_equal(np.sort(joined), rest), "a non-test row is never scored"

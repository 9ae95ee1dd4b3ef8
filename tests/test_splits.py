"""Validation schemes: one invariant helper for every scheme, equality with scikit-learn's
splitters, the leakage count, and config errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import model_selection as ms

from invariants import assert_valid_plan
from kerastrain.config import load_config
from kerastrain.config.schema import ValidationSpec
from kerastrain.data.leakage import check_leakage, row_ids
from kerastrain.data.splits import SplitPlan, make_splits
from kerastrain.data.table import Table
from kerastrain.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
INVALID = ROOT / "tests" / "configs" / "invalid"
N = 60
SEED = 7
LABELS = np.array(["a"] * 36 + ["b"] * 15 + ["c"] * 9, dtype=object)
GROUPS = np.repeat(np.arange(20), 3)
TIMES = np.random.default_rng(0).permutation(N)          # a time column, not in row order
TIME_ROWS = np.argsort(TIMES, kind="stable")


def _rest(plan: SplitPlan, time_rows: np.ndarray | None = None) -> np.ndarray:
    """The non-test rows as the splitter received them (ascending, or in time order)."""
    if time_rows is None:
        return np.setdiff1d(np.arange(N), plan.test)
    return time_rows[~np.isin(time_rows, plan.test)]


# Each case: the spec, the scikit-learn splitters that must reproduce it, and its inputs.
CASES = {
    "kfold": (dict(scheme="kfold", n_splits=4),
              lambda: [ms.KFold(4, shuffle=True, random_state=SEED)], {}),
    "kfold-unshuffled": (dict(scheme="kfold", n_splits=5, shuffle=False),
                         lambda: [ms.KFold(5)], {}),
    "repeated": (dict(scheme="repeated_kfold", n_splits=4, n_repeats=3),
                 lambda: [ms.RepeatedKFold(n_splits=4, n_repeats=3, random_state=SEED)], {}),
    "stratified": (dict(scheme="kfold", n_splits=3, stratify=True),
                   lambda: [ms.StratifiedKFold(3, shuffle=True, random_state=SEED)],
                   {"labels": LABELS}),
    "repeated-stratified": (dict(scheme="repeated_kfold", n_splits=3, n_repeats=2),
                            lambda: [ms.RepeatedStratifiedKFold(n_splits=3, n_repeats=2,
                                                                random_state=SEED)],
                            {"labels": LABELS}),
    "grouped": (dict(scheme="kfold", n_splits=4, groups="g", stratify=False),
                lambda: [ms.GroupKFold(4, shuffle=True, random_state=SEED)],
                {"labels": LABELS, "groups": GROUPS}),
    "stratified-grouped": (dict(scheme="kfold", n_splits=3, groups="g"),
                           lambda: [ms.StratifiedGroupKFold(3, shuffle=True,
                                                            random_state=SEED)],
                           {"labels": LABELS, "groups": GROUPS}),
    "repeated-grouped": (dict(scheme="repeated_kfold", n_splits=3, n_repeats=2, groups="g"),
                         lambda: [ms.GroupKFold(3, shuffle=True, random_state=SEED + r)
                                  for r in range(2)], {"groups": GROUPS}),
    "time-column": (dict(scheme="kfold", n_splits=4, time_order="t"),
                    lambda: [ms.TimeSeriesSplit(4)], {"time_rows": TIME_ROWS}),
    "time-row-order": (dict(scheme="kfold", n_splits=3, time_order=True),
                       lambda: [ms.TimeSeriesSplit(3)], {"time_rows": np.arange(N)}),
}


@pytest.mark.parametrize("test_split", [0.0, 0.25])
@pytest.mark.parametrize("case", list(CASES))
def test_folds_keep_the_invariants_and_equal_scikit_learn(case: str, test_split: float) -> None:
    fields, splitters, inputs = CASES[case]
    spec = ValidationSpec(test_split=test_split, **fields)
    plan = make_splits(N, inputs.get("labels"), spec, SEED, inputs.get("groups"),
                       inputs.get("time_rows"))
    assert_valid_plan(plan, N, inputs.get("groups"), inputs.get("time_rows"))
    assert len(plan.test) == int(np.ceil(test_split * N)) or "groups" in inputs
    rows = _rest(plan, inputs.get("time_rows"))
    labels = inputs.get("labels")
    stratified = fields.get("stratify", "auto") is not False and labels is not None
    y = labels[rows].astype(str) if stratified else None
    g = inputs["groups"][rows] if "groups" in inputs else None
    expected = [(rows[tr], rows[va]) for s in splitters()
                for tr, va in s.split(np.zeros((len(rows), 1)), y, g)]
    assert len(plan.folds) == len(expected)
    for fold, (train, validation) in zip(plan.folds, expected, strict=True):
        assert np.array_equal(fold.train, train), fold.name
        assert np.array_equal(fold.validation, validation), fold.name
    assert plan.folds[-1].name == f"{plan.n_repeats - 1}-{plan.n_splits - 1}"


@pytest.mark.parametrize("fields, inputs", [
    (dict(), {}),
    (dict(test_split=0.2, stratify=True), {"labels": LABELS}),
    (dict(test_split=0.2, groups="g"), {"groups": GROUPS}),
    (dict(test_split=0.2, time_order="t"), {"time_rows": TIME_ROWS}),
])
def test_holdout_keeps_the_invariants(fields: dict, inputs: dict) -> None:
    plan = make_splits(N, inputs.get("labels"), ValidationSpec(**fields), SEED,
                       inputs.get("groups"), inputs.get("time_rows"))
    assert [f.name for f in plan.folds] == ["holdout"]
    assert_valid_plan(plan, N, inputs.get("groups"), inputs.get("time_rows"))


def test_holdout_indices_are_those_of_train_test_split() -> None:
    """Holdout is unchanged: test with the seed, then validation with seed + 1."""
    plan = make_splits(N, None, ValidationSpec(test_split=0.2), SEED)
    rest, test = ms.train_test_split(np.arange(N), test_size=12, random_state=SEED)
    train, validation = ms.train_test_split(np.sort(rest), test_size=10, random_state=SEED + 1)
    assert np.array_equal(plan.test, np.sort(test))
    assert np.array_equal(plan.folds[0].validation, np.sort(validation))
    assert np.array_equal(plan.folds[0].train, np.sort(train))


def test_validation_seed_replaces_the_config_seed_and_changes_folds() -> None:
    spec = ValidationSpec(scheme="kfold", n_splits=3)
    base = make_splits(N, None, spec, SEED)
    other = make_splits(N, None, spec.model_copy(update={"seed": SEED + 1}), SEED)
    same = make_splits(N, None, spec.model_copy(update={"seed": SEED}), 12345)
    assert not np.array_equal(base.folds[0].validation, other.folds[0].validation)
    assert np.array_equal(base.folds[0].validation, same.folds[0].validation)


def test_splits_json_round_trips() -> None:
    plan = make_splits(N, None, ValidationSpec(scheme="repeated_kfold", n_splits=3,
                                               n_repeats=2, test_split=0.2), SEED)
    again = SplitPlan.from_json(plan.to_json())
    assert again.splitter == plan.splitter and len(again.folds) == 6
    for a, b in zip(plan.folds, again.folds, strict=True):
        assert a.name == b.name
        for part in ("train", "validation", "inner"):
            assert np.array_equal(getattr(a, part), getattr(b, part))


def test_stratify_auto_falls_back_with_a_note() -> None:
    plan = make_splits(N, LABELS, ValidationSpec(scheme="kfold", n_splits=10), SEED)
    assert "KFold" in plan.splitter and "Stratified" not in plan.splitter
    assert any("not stratified" in note for note in plan.notes)


# -- leakage ------------------------------------------------------------------------------

def test_row_ids_match_a_brute_force_comparison() -> None:
    rng = np.random.default_rng(1)
    table = Table({"x": rng.integers(0, 3, 200).astype(float),
                   "s": np.array(rng.choice(["u", "v"], 200), dtype=object),
                   "img": rng.integers(0, 2, (200, 2, 2)).astype(np.uint8)})
    ids = row_ids(table, ["x", "s", "img"])
    for i in range(0, 200, 7):
        for j in range(0, 200, 5):
            same = (table.columns["x"][i] == table.columns["x"][j]
                    and table.columns["s"][i] == table.columns["s"][j]
                    and np.array_equal(table.columns["img"][i], table.columns["img"][j]))
            assert (ids[i] == ids[j]) == same


def test_leakage_counts_duplicates_and_split_groups() -> None:
    x = np.arange(N, dtype=float)
    x[[5, 40]] = 1000.0           # rows 5 and 40 are identical in every feature
    table = Table({"x": x})
    groups = GROUPS.copy()
    plan = SplitPlan("holdout", np.array([40, 41]), [])
    report = check_leakage(table, ["x"], plan, groups)
    assert report.duplicates == {"test": 1}
    assert report.split_groups == {"test": 1}  # rows 39-41 are group 13; 39 is not test
    assert "test: 1 rows" in report.message()


SPLIT_COLUMNS = """name: columns
seed: 0
data:
  source: {type: csv, path: %s}
  target: target
model:
  layers: [{type: Dense, units: 1, activation: sigmoid}]
compile: {loss: binary_crossentropy}
validation: {scheme: kfold, n_splits: 3, leakage: ignore, %s}
"""


@pytest.mark.parametrize("option, features, splitter", [
    ("groups: patient", ["day", "x0", "x1"], "GroupKFold"),
    ("time_order: day", ["patient", "x0", "x1"], "TimeSeriesSplit"),
])
def test_split_columns_are_not_default_features(option: str, features: list[str],
                                                splitter: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    config = tmp_path / "columns.yaml"
    config.write_text(SPLIT_COLUMNS % (ROOT / "tests" / "data" / "grouped.csv", option))
    experiment = load_experiment(load_config(config))
    assert experiment.features == features
    assert splitter in experiment.plan.splitter


def test_splits_json_is_written_a_line_of_rows_at_a_time(monkeypatch) -> None:
    """splits.json's text, written from the arrays in pieces, reads back as `to_json`."""
    import json

    from kerastrain.data import plan as plan_module
    from kerastrain.data.plan import Fold, SplitPlan

    monkeypatch.setattr(plan_module, "LINE_ROWS", 3)
    plan = SplitPlan("kfold", np.arange(5), [
        Fold("0-0", np.arange(7), np.array([9, 8]), np.array([1])),
        Fold("0-1", np.array([], dtype=np.int64), np.arange(2))], "KFold", 2, 1, ('a "note"',))
    text = "".join(plan.json_pieces())
    assert json.loads(text) == plan.to_json()
    assert "[0,1,2,\n3,4,5,\n6]" in text

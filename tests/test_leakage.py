"""Row ids by 64-bit hashes: equal rows get equal ids whatever the dtype, chunking or
padding, and the leakage counts match a brute-force comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import iris_config, write_config
from kerastrain.data import leakage
from kerastrain.data.leakage import check_leakage, row_ids
from kerastrain.data.splits import SplitPlan
from kerastrain.data.table import Table


def _brute_force_equal(table: Table, names: list[str], i: int, j: int) -> bool:
    return all(np.array_equal(table.columns[n][i], table.columns[n][j], equal_nan=True)
               if table.columns[n].dtype != object else
               str(table.columns[n][i]) == str(table.columns[n][j]) for n in names)


def test_ids_of_wide_rows_across_chunks_match_brute_force(monkeypatch) -> None:
    monkeypatch.setattr(leakage, "_CHUNK_WORDS", 8)   # 4-word rows: 2 rows per chunk
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, (6, 7)).astype(np.float32)           # 28 bytes: padded to 32
    table = Table({"img": base[rng.integers(0, 6, 41)],
                   "n": rng.integers(0, 2, 41).astype(np.int16),
                   "s": np.array(rng.choice(["p", "q"], 41), dtype=object)})
    names = ["img", "n", "s"]
    ids = row_ids(table, names)
    assert ids.dtype == np.uint64
    for i in range(41):
        for j in range(41):
            assert (ids[i] == ids[j]) == _brute_force_equal(table, names, i, j)


def test_signed_zeros_and_nans_hash_equal() -> None:
    odd_nan = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    table = Table({"x": np.array([0.0, -0.0, np.nan, odd_nan, 1.0]),
                   "a": np.array([[0.0, np.nan], [-0.0, np.nan], [1, 1], [1, 1], [2, 2]],
                                 dtype=np.float32)})
    ids = row_ids(table, ["x", "a"])
    assert ids[0] == ids[1] and ids[2] == ids[3]
    assert len(set(ids.tolist())) == 3


def test_column_order_and_word_position_matter() -> None:
    table = Table({"a": np.array([1.0, 2.0]), "b": np.array([2.0, 1.0]),
                   "img": np.array([[1, 2], [2, 1]], dtype=np.float64)})
    assert row_ids(table, ["a", "b"])[0] != row_ids(table, ["b", "a"])[0]
    ids = row_ids(table, ["img"])
    assert ids[0] != ids[1]


def test_counts_of_duplicated_image_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 28, 28)).astype(np.float32)
    x[[10, 250, 251]] = x[3]                  # row 3's image also at 10, 250 and 251
    plan = SplitPlan("holdout", np.arange(250, 300), [])
    report = check_leakage(Table({"x": x}), ["x"], plan, None)
    assert report.duplicates == {"test": 2}


def _count_by_hand(rows: list[tuple], a: list[int], b: list[int]) -> int:
    """How many rows of `a` equal some row of `b`, feature by feature."""
    others = {rows[j] for j in b}
    return sum(rows[i] in others for i in a)


@pytest.mark.parametrize("policy", ["warn", "ignore"])
def test_a_fit_records_the_leakage_it_counted(cli, tmp_path: Path, policy: str) -> None:
    """Iris holds duplicated rows. `leakage: warn`: run.json holds the counts per pair of
    splits (the test split, each fold's scored rows and its inner validation rows against
    their training rows), as counted here by hand from splits.json, and the warning;
    `ignore`: nothing is counted or said."""
    from sklearn.datasets import load_iris

    config = iris_config(tmp_path / "runs")
    config["training"]["epochs"] = 1
    config["validation"] = {"scheme": "kfold", "n_splits": 3, "test_split": 0.2,
                            "validation_split": 0.2, "refit": False, "leakage": policy}
    config["output"]["plots"] = False
    config["runtime"] = {"workers": 1}
    result = cli("fit", write_config(tmp_path / "c.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    info = json.loads((run / "run.json").read_text())
    if policy == "ignore":
        assert info["leakage"] == "not checked"
        assert not any("leakage" in w for w in info["warnings"])
        assert "possible leakage" not in result.stderr
        return
    rows = [tuple(r) for r in load_iris().data.tolist()]
    splits = json.loads((run / "splits.json").read_text())
    test = splits["test"]
    expected = {"test": _count_by_hand(rows, test, sorted(set(range(150)) - set(test)))}
    for fold in splits["folds"]:
        fit_rows = sorted(set(fold["train"]) - set(fold["inner_validation"]))
        expected[f"fold {fold['name']} validation"] = _count_by_hand(
            rows, fold["validation"], fold["train"])
        expected[f"fold {fold['name']} inner validation"] = _count_by_hand(
            rows, fold["inner_validation"], fit_rows)
    assert sum(expected.values()) > 0  # iris has duplicates: the counts say something
    assert info["leakage"]["duplicate_rows"] == expected
    assert info["leakage"]["total"] == sum(expected.values())
    assert any(w.startswith("possible leakage") for w in info["warnings"])
    assert "possible leakage" in result.stderr


def test_a_small_feature_space_says_duplicates_are_expected_not_to_drop_them() -> None:
    rng = np.random.default_rng(0)
    table = Table({"a": np.array(rng.choice(["x", "y", "z"], 400), dtype=object),
                   "b": np.array(rng.choice(["p", "q", "r", "s"], 400), dtype=object)})
    plan = SplitPlan("holdout", np.arange(300, 400), [])
    report = check_leakage(table, ["a", "b"], plan, None)
    assert report.distinct == 12 and report.duplicates["test"] == 100
    message = report.message()
    assert "only 12 distinct rows in 400" in message and "duplicates are expected" in message
    assert "validation.groups" in message and "Drop the duplicates" not in message
    wide = Table({"a": rng.normal(size=400)})
    wide.columns["a"][350:360] = wide.columns["a"][:10]      # ten true duplicates
    assert "Drop the duplicates" in check_leakage(wide, ["a"], plan, None).message()

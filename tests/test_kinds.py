"""Column kinds inferred from training rows, their fitted state per strategy (statistics
from a fold's training rows only), and the layers that apply them (data/kinds.py,
data/columns.py, data/layers.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kerastrain.config.schema import ColumnSpec, PreprocessingSpec
from kerastrain.data import kinds
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.table import Table
from kerastrain.errors import DataError

MARKS = kinds.markers(PreprocessingSpec())
RNG = np.random.default_rng(3)


def obj(values) -> np.ndarray:
    return np.array(values, dtype=object)


@pytest.mark.parametrize("values, name, kind", [
    (np.arange(30.0) * 1.5, "x", "numeric"),
    (obj(["1.5", "?", "2", "NA", "", "3"] * 5), "x", "numeric"),        # markers are missing
    (np.array([0.0, 1.0] * 15), "x", "binary"),
    (obj(["yes", "no"] * 15), "x", "binary"),
    (obj(["a", "b", "c"] * 10), "x", "categorical"),
    (obj([f"2020-01-{d:02d}" for d in range(1, 31)]), "x", "date"),
    (obj([f"2020-01-{d:02d} 10:{d:02d}:00" for d in range(1, 31)]), "x", "datetime"),
    (obj([f"{d} March 2024" for d in range(1, 31)]), "x", "date"),      # month names, full
    (obj([f"Sep {d}, 2024" for d in range(1, 31)]), "x", "date"),
    (obj([f"the {w} cat sat on mat {i}" for i, w in enumerate("abcdefghij" * 3)]), "x",
     "text"),
    (obj([f"K{i:04d}" for i in range(30)]), "code", "identifier"),     # near-unique strings
    (np.arange(30.0), "row", "identifier"),                            # consecutive integers
    (RNG.permutation(30).astype(float) * 7, "CustomerId", "identifier"),  # unique, id name
    (obj(["NA", ""] * 15), "x", "empty"),
    (obj(["same"] * 30), "x", "constant"),
])
def test_kinds_are_inferred_from_the_values(values: np.ndarray, name: str, kind: str) -> None:
    assert kinds.infer(name, values, MARKS).kind == kind


def test_a_declared_kind_wins_and_says_so() -> None:
    choice = kinds.infer("z", np.arange(30.0), MARKS, ColumnSpec(kind="categorical"))
    assert (choice.kind, choice.reason) == ("categorical", "set in data.columns.z.kind")
    listed = kinds.infer("z", np.arange(30.0), MARKS, categorical={"z"})
    assert listed.kind == "categorical"


def test_a_few_stray_words_in_numbers_count_as_missing_and_are_said() -> None:
    values = obj([str(i * 1.5) for i in range(39)] + ["unknown"])
    choice = kinds.infer("x", values, MARKS)
    assert choice.kind == "numeric" and "'unknown'" in choice.notes[0]


def fit(table: Table, features: list[str], rows=None, columns=None, **spec) -> Preprocessor:
    rows = np.arange(table.n_rows) if rows is None else np.asarray(rows)
    return Preprocessor.fit(table, features, "y", rows, PreprocessingSpec(**spec),
                            "classification", "integer", columns)


@pytest.mark.parametrize("strategy", ["median", "mean"])
def test_a_folds_imputation_is_computed_on_its_training_rows_only(strategy: str) -> None:
    x = np.array([1.0, np.nan, 4.0, 10.0, np.nan, 1000.0, -500.0, 7.0])
    table = Table({"x": x, "y": np.array([0, 1] * 4)})
    train = np.array([0, 1, 2, 3, 4])        # rows 5-7 (the extremes) are not the fold's
    entry = fit(table, ["x"], train, numeric_missing=strategy).features[0]
    known = np.array([1.0, 4.0, 10.0])
    fill = np.median(known) if strategy == "median" else np.mean(known)
    filled = np.array([1.0, fill, 4.0, 10.0, fill])
    assert entry["fill"] == fill
    assert entry["mean"] == pytest.approx(filled.mean(), rel=1e-12)
    assert entry["std"] == pytest.approx(filled.std(), rel=1e-12)
    assert (entry["missing_rows"], entry["indicator"]) == (2, True)


def test_constant_fill_and_no_indicator_when_asked() -> None:
    table = Table({"x": np.array([1.0, np.nan, 3.0, 5.0]), "y": np.array([0, 1, 0, 1])})
    pre = fit(table, ["x"], columns={"x": ColumnSpec(missing="constant", fill_value=-1.0,
                                                     indicator=False)}, numeric="none")
    assert pre.transform_x(table).tolist() == [[1.0], [-1.0], [3.0], [5.0]]


def test_every_columns_problems_come_in_one_message() -> None:
    table = Table({"a": obj(["1", "2", "x", "y", "5", "6"]),
                   "b": np.array([1.0, np.inf, 2, 3, 4, 5]),
                   "c": np.arange(6.0), "y": np.array([0, 1] * 3)})
    with pytest.raises(DataError) as caught:
        fit(table, ["a", "b", "c"], columns={"c": ColumnSpec(missing="constant")})
    message = str(caught.value)
    assert "column 'a' is numeric but row 2 holds 'x'" in message
    assert "column 'b' holds an infinite value" in message
    assert "missing: constant needs fill_value" in message


def test_categories_missing_rare_unseen_and_hashed() -> None:
    plan = obj(["basic"] * 5 + ["pro"] * 4 + ["team"] + ["NA"] * 2 + ["premium"])
    table = Table({"plan": plan, "y": np.arange(13) % 2})
    train = np.arange(12)
    pre = fit(table, ["plan"], train, min_frequency=2)
    entry = pre.features[0]
    assert entry["categories"] == ["", "basic", "pro"]      # "" is the missing category
    assert entry["other"] == 1                             # 'team', seen once
    x = pre.transform_x(table)
    assert x.shape == (13, 4)                              # 'other', missing, basic, pro
    assert x[9].tolist() == [1, 0, 0, 0] and x[12].tolist() == [1, 0, 0, 0]  # rare, unseen
    assert x[10].tolist() == [0, 1, 0, 0]
    notes = pre.check_values(table, with_target=False)
    assert any("'premium'" in n and "'other' bucket" in n for n in notes)
    top = fit(table, ["plan"], train, max_categories=1).features[0]
    assert top["categories"] == ["basic"]
    hashed = fit(table, ["plan"], train, columns={"plan": ColumnSpec(encoding="hash",
                                                                    hash_bins=8)})
    assert hashed.transform_x(table).shape == (13, 8)


def test_messages_list_a_handful_of_categories() -> None:
    assert kinds.preview([f"c{i}" for i in range(40)]) == \
        "'c0', 'c1', 'c2', 'c3', 'c4' and 35 more"


def test_dates_become_parts_and_later_dates_are_ordinary_input() -> None:
    days = [f"20{y:02d}-{m:02d}-{d:02d}" for y, m, d in
            [(19, 1, 1), (19, 6, 15), (20, 2, 29), (20, 12, 31), (21, 3, 7)]]
    table = Table({"d": obj([*days, "", "2031-07-04"]), "y": np.arange(7) % 2})
    pre = fit(table, ["d"], np.arange(6))
    x = pre.transform_x(table)
    stamps = np.array([*days, days[2], "2031-07-04"], dtype="datetime64[D]")  # fill: median
    years = stamps.astype("datetime64[Y]").astype(int) + 1970
    months = stamps.astype("datetime64[M]").astype(int) % 12 + 1
    mday = (stamps - stamps.astype("datetime64[M]")).astype(int) + 1
    weekday = (stamps.astype(int) + 3) % 7
    yday = (stamps - stamps.astype("datetime64[Y]")).astype(int)
    entry = pre.features[0]
    expected = np.stack([(years - entry["year_mean"]) / entry["year_std"], (mday - 1) / 30,
                         (months - 1) / 11, weekday / 6, yday / 365,
                         [0, 0, 0, 0, 0, 1, 0]], axis=1)
    np.testing.assert_allclose(x, expected, atol=1e-6)
    cyclic = fit(table, ["d"], np.arange(6), columns={"d": ColumnSpec(cyclic=True)})
    assert cyclic.transform_x(table).shape == (7, 9)


@pytest.mark.parametrize("encoding", ["multi_hot", "count", "tf_idf"])
def test_text_is_vectorised_on_the_training_rows(encoding: str) -> None:
    texts = obj(["red apple pie", "green apple", "red red wine", "", "blue sky wine"])
    table = Table({"t": texts, "y": np.arange(5) % 2})
    pre = fit(table, ["t"], np.arange(4), columns={"t": ColumnSpec(kind="text",
                                                                  encoding=encoding)})
    entry = pre.features[0]
    assert "sky" not in entry["vocabulary"]                # row 4 is not a training row
    assert "pie" not in entry["vocabulary"] and "apple" in entry["vocabulary"]  # 1 row, 2
    x = pre.transform_x(table)
    assert x.shape == (5, len(entry["vocabulary"]) + 1)
    red = 1 + entry["vocabulary"].index("red")
    assert x[3].sum() == 0 and x[2, red] > x[0, red] > 0 if encoding != "multi_hot" \
        else x[2, red] == x[0, red] == 1


def test_a_regression_target_far_from_standard_scale_is_scaled() -> None:
    table = Table({"x": np.arange(6.0), "y": np.array([70.0, 72, 75, 80, 71, 77])})
    rows = np.arange(4)
    pre = Preprocessor.fit(table, ["x"], "y", rows, PreprocessingSpec(), "regression", "")
    assert pre.target["scale"] == pytest.approx({"mean": 74.25, "std": np.std([70, 72, 75,
                                                                                80])})
    assert pre.transform_y(table).tolist() == [70, 72, 75, 80, 71, 77]   # its own units
    kept = Preprocessor.fit(table, ["x"], "y", rows, PreprocessingSpec(scale_target="none"),
                            "regression", "")
    assert "scale" not in kept.target


def test_kinds_fitting_and_the_layers_module_import_no_tensorflow() -> None:
    """Kind inference is NumPy only (validate's column report); the layers module defers
    TensorFlow until a layer is built."""
    code = ("import sys; import kerastrain.data.kinds, kerastrain.data.columns, "
            "kerastrain.data.layers, kerastrain.data.preprocess; "
            "from kerastrain.data.kinds import infer; import numpy as np; "
            "infer('x', np.arange(30.0) * 2, frozenset()); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)

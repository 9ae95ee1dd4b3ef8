"""Data: readers and their errors, sources, preprocessing fitted on training rows only,
the hold-out split, and the Fashion-MNIST loader on small files made here."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from kerastrain.config.schema import PreprocessingSpec, SourceSpec, ValidationSpec
from kerastrain.data import sources
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.sources import load_source
from kerastrain.data.splits import make_splits
from kerastrain.data.table import Table, read_csv, read_file
from kerastrain.errors import DataError, KeyProblem


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_reads_numbers_and_strings(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path / "a.csv", "x,color,y\n1.5,red,a\n2,blue,b\n"))
    assert table.columns["x"].tolist() == [1.5, 2.0]
    assert table.columns["color"].tolist() == ["red", "blue"]
    assert table.numeric_hint == {"x": True, "color": False, "y": False}


def test_csv_ragged_line_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"line 3 has 2 fields; the header has 3"):
        read_csv(write(tmp_path / "a.csv", "x,c,y\n1,a,b\n2,b\n"))


def fit_pre(table: Table, features: list[str], target: str, rows=None, **spec) -> Preprocessor:
    rows = np.arange(table.n_rows) if rows is None else rows
    return Preprocessor.fit(table, features, target, rows, PreprocessingSpec(**spec),
                            "classification", "integer")


def test_missing_numbers_are_filled_with_the_training_median_and_flagged(
        tmp_path: Path) -> None:
    table = read_csv(write(tmp_path / "a.csv", "x,y\n1,a\n2,b\n,a\n10,b\n"))
    pre = fit_pre(table, ["x"], "y", numeric="none")
    entry = pre.features[0]
    assert (entry["fill"], entry["missing_rows"], entry["indicator"]) == (2.0, 1, True)
    assert pre.transform_x(table).tolist() == [[1, 0], [2, 0], [2, 1], [10, 0]]


def test_non_numeric_value_in_numeric_column(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path / "a.csv", "x,y\n1,a\n2,b\nthree,a\n4,b\n5,a\n"))
    with pytest.raises(DataError, match=r"column 'x' is numeric but row 3 \(line 4\) holds "
                                        r"'three'"):
        fit_pre(table, ["x"], "y")


def test_missing_column_when_predicting(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path / "a.csv", "x,z,y\n1,2,a\n2,3,b\n"))
    pre = fit_pre(table, ["x", "z"], "y")
    new = read_csv(write(tmp_path / "b.csv", "x\n1\n"))
    with pytest.raises(DataError, match=r"no column \(the model was trained with it\) 'z'"):
        pre.check_columns(new, with_target=False)


def test_unknown_file_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data file type '.xlsx'"):
        read_file(tmp_path / "rows.xlsx")


def test_statistics_come_from_training_rows_only() -> None:
    x = np.array([0.0, 2.0, 4.0, 100.0, 200.0])
    table = Table({"x": x, "y": np.array(["a", "b", "a", "b", "a"], dtype=object)})
    train = np.array([0, 1, 2])
    pre = fit_pre(table, ["x"], "y", rows=train)
    entry = pre.features[0]
    assert entry["mean"] == pytest.approx(2.0)
    assert entry["std"] == pytest.approx(np.std([0.0, 2.0, 4.0]))
    scaled = pre.transform_x(table)
    assert scaled[3, 0] == pytest.approx((100.0 - 2.0) / np.std([0.0, 2.0, 4.0]), rel=1e-5)


def test_minmax_and_rescale() -> None:
    table = Table({"x": np.array([0.0, 5.0, 10.0]), "y": np.array([0, 1, 0])})
    pre = fit_pre(table, ["x"], "y", numeric="minmax", rescale=2.0)
    assert pre.transform_x(table)[:, 0].tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_categorical_one_hot_and_integer_with_unseen() -> None:
    table = Table({"c": np.array(["red", "blue", "red", "tan", "green"], dtype=object),
                   "y": np.array([0, 1, 0, 1, 0])})
    train = np.array([0, 1, 2, 3])
    one_hot = fit_pre(table, ["c"], "y", rows=train)
    assert one_hot.features[0]["categories"] == ["blue", "red", "tan"]
    # column 0: the 'other' bucket, where 'green' (never seen in training) goes
    assert one_hot.transform_x(table).tolist() == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                   [0, 0, 0, 1], [1, 0, 0, 0]]
    integer = fit_pre(table, ["c"], "y", rows=train, categorical="integer")
    assert integer.transform_x(table)[:, 0].tolist() == [2, 1, 2, 3, 0]


def test_string_labels_encode_and_decode() -> None:
    table = Table({"x": np.arange(4.0), "y": np.array(["cat", "dog", "cat", "ant"], dtype=object)})
    pre = fit_pre(table, ["x"], "y")
    assert pre.classes == ["ant", "cat", "dog"]
    assert pre.transform_y(table).tolist() == [1, 2, 1, 0]
    labels, scores = pre.decode(np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]))
    assert labels == ["dog", "ant"]
    assert scores.shape == (2, 3)


def test_unseen_label_is_an_error() -> None:
    table = Table({"x": np.arange(4.0), "y": np.array(["a", "b", "a", "c"], dtype=object)})
    pre = fit_pre(table, ["x"], "y", rows=np.array([0, 1, 2]))
    with pytest.raises(DataError, match="label 'c' in these rows is not among the classes"):
        pre.transform_y(table)


def test_preprocessor_json_round_trip() -> None:
    table = Table({"x": np.arange(6.0), "c": np.array(list("abcabc"), dtype=object),
                   "y": np.array([0, 1] * 3)})
    pre = fit_pre(table, ["x", "c"], "y")
    again = Preprocessor.from_json(pre.to_json())
    np.testing.assert_array_equal(again.transform_x(table), pre.transform_x(table))
    assert again.input_shape == [5]   # x, then c's a, b, c and 'other'



@pytest.mark.parametrize("name", ["iris", "digits", "wine", "breast_cancer", "diabetes"])
def test_sklearn_sources(name: str) -> None:
    table = load_source(SourceSpec(type="sklearn", name=name), seed=0)
    assert "target" in table.columns and table.n_rows > 100


def test_gaussian_clouds_follow_the_seed() -> None:
    table = load_source(SourceSpec(type="synthetic", name="gaussian_clouds", n_samples=500), 3)
    y = table.columns["target"]
    assert table.n_rows == 1000 and y.sum() == 500
    negative = np.stack([table.columns["x0"][y == 0], table.columns["x1"][y == 0]], axis=1)
    assert negative.mean(axis=0) == pytest.approx([0.0, 3.0], abs=0.15)
    assert np.cov(negative.T)[0, 1] == pytest.approx(0.5, abs=0.15)


def test_generators_are_seeded() -> None:
    spec = SourceSpec(type="synthetic", name="regression", n_samples=50, n_features=3, noise=1)
    a, b = load_source(spec, 1), load_source(spec, 1)
    np.testing.assert_array_equal(a.columns["x0"], b.columns["x0"])
    assert not np.array_equal(a.columns["x0"], load_source(spec, 2).columns["x0"])


def test_holdout_split_is_disjoint_stratified_and_covers_all_rows() -> None:
    labels = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 30, dtype=object)
    plan = make_splits(120, labels, ValidationSpec(validation_split=0.25, test_split=0.2), 0)
    fold = plan.folds[0]
    parts = [plan.test, fold.train, fold.validation]
    assert sum(len(p) for p in parts) == 120
    assert len(np.unique(np.concatenate(parts))) == 120
    assert len(plan.test) == 24
    for part in parts:  # stratified: each part keeps the 2:1:1 proportions
        counts = {c: int((labels[part] == c).sum()) for c in "abc"}
        assert counts["a"] == pytest.approx(2 * counts["b"], abs=1)


def test_impossible_stratification_is_a_config_error() -> None:
    labels = np.array(["a"] * 9 + ["b"], dtype=object)
    with pytest.raises(KeyProblem, match="cannot stratify"):
        make_splits(10, labels, ValidationSpec(validation_split=0.2, stratify=True), 0)


def _idx(path: Path, header: bytes, payload: np.ndarray) -> None:
    with gzip.open(path, "wb") as handle:
        handle.write(header + payload.astype(np.uint8).tobytes())


def make_fashion_cache(folder: Path, n_train: int = 6, n_test: int = 4) -> None:
    folder.mkdir(parents=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        _idx(folder / f"{part}-labels-idx1-ubyte.gz", struct.pack(">II", 2049, n), labels)
        images = np.tile(labels[:, None, None], (1, 28, 28))
        _idx(folder / f"{part}-images-idx3-ubyte.gz", struct.pack(">IIII", 2051, n, 28, 28),
             images)


def test_fashion_mnist_reads_the_keras_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    make_fashion_cache(tmp_path / "datasets" / "fashion-mnist")
    table = sources.load_fashion_mnist()
    assert table.columns["image"].shape == (10, 28, 28)
    assert table.columns["label"][:3].tolist() == ["T-shirt/top", "Trouser", "Pullover"]
    # the 4 test rows follow the 6 training rows: row 7 is the second test image
    assert int(table.columns["image"][7, 5, 5]) == 1


def test_fashion_mnist_offline_fails_clearly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    class Offline:
        @staticmethod
        def load_data():
            raise OSError("Name or service not known")

    class FakeKeras:
        class datasets:  # noqa: N801 - mirrors keras.datasets
            fashion_mnist = Offline

    monkeypatch.setattr(sources._keras, "keras", lambda: FakeKeras)
    with pytest.raises(DataError, match=r"not in the Keras cache .* could not be downloaded: "
                                        r"OSError: Name or service not known"):
        sources.load_fashion_mnist()


def test_parquet_and_npz_sources(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0, 2.0], "c": ["a", "b"]}), tmp_path / "t.parquet")
    table = load_source(SourceSpec(type="parquet", path=str(tmp_path / "t.parquet")), 0)
    assert table.columns["x"].tolist() == [1.0, 2.0]
    assert table.columns["c"].tolist() == ["a", "b"]
    np.savez(tmp_path / "a.npz", images=np.zeros((3, 4, 4)), label=np.array([0, 1, 0]))
    table = load_source(SourceSpec(type="npz", path=str(tmp_path / "a.npz")), 0)
    assert table.columns["images"].shape == (3, 4, 4)
    pre = Preprocessor.fit(table, ["images"], "label", np.arange(3), PreprocessingSpec(),
                           "classification", "integer")
    assert pre.input_shape == [4, 4]  # an N-D array column keeps its shape for the model

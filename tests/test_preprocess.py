"""The numeric data path: statistics and scaled inputs equal to a float64 reference,
computed chunk by chunk without float64 copies, and no copy at all where none is needed."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from kerastrain.config.schema import PreprocessingSpec
from kerastrain.data import chunked, layers
from kerastrain.data.preprocess import Preprocessor
from kerastrain.data.table import Table

RNG = np.random.default_rng(5)
IMAGES = (1000.0 + 3.0 * RNG.normal(size=(300, 6, 5))).astype(np.float32)  # large offset
TABLE = Table({"img": IMAGES, "u": RNG.normal(size=300) * 1e3 + 7.0,
               "pix": RNG.integers(0, 256, (300, 4)).astype(np.uint8),
               "c": np.array(RNG.choice(["a", "b", "c"], 300), dtype=object),
               "y": RNG.integers(0, 3, 300)})
ROWS = np.sort(RNG.choice(300, 200, replace=False))


def fit(features: list[str], rows: np.ndarray = ROWS, **spec) -> Preprocessor:
    return Preprocessor.fit(TABLE, features, "y", rows, PreprocessingSpec(**spec),
                            "classification", "integer")


def reference(values: np.ndarray, entry: dict, rescale: float | None) -> np.ndarray:
    """The former whole-array float64 computation."""
    x = values.astype(np.float64) * (rescale or 1.0)
    if entry["scale"] == "standardize":
        x = (x - entry["mean"]) / entry["std"]
    elif entry["scale"] == "minmax":
        x = (x - entry["min"]) / (entry["max"] - entry["min"])
    return x.astype(np.float32).reshape(len(values), -1)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", 64)  # many chunks, a partial last one


@pytest.mark.parametrize("rescale", [None, 0.5, -2.0])
@pytest.mark.parametrize("name", ["img", "u", "pix"])
def test_statistics_match_a_float64_reference(name: str, rescale: float | None) -> None:
    train = TABLE.columns[name][ROWS].astype(np.float64) * (rescale or 1.0)
    std = fit([name], numeric="standardize", rescale=rescale).features[0]
    assert std["mean"] == pytest.approx(np.mean(train), rel=1e-9)
    assert std["std"] == pytest.approx(np.std(train), rel=1e-9)
    minmax = fit([name], numeric="minmax", rescale=rescale).features[0]
    assert (minmax["min"], minmax["max"]) == (np.min(train), np.max(train))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("numeric", ["standardize", "minmax", "none"])
@pytest.mark.parametrize("rescale", [None, 0.25])
def test_inputs_equal_the_float64_computation(numeric: str, rescale: float | None,
                                              compiled: bool, monkeypatch) -> None:
    """Bit for bit, through the layers run eagerly and compiled (XLA: large arrays)."""
    monkeypatch.setattr(layers, "COMPILE_VALUES", 0 if compiled else 1 << 40)
    features = ["img", "u", "c", "pix"]
    pre = fit(features, numeric=numeric, rescale=rescale)
    rows = RNG.permutation(300)[:77]
    x = pre.transform_x(TABLE, rows)
    # column 0 is the 'other' bucket (values never seen in training)
    one_hot = (TABLE.columns["c"][rows, None] == np.array(["", "a", "b", "c"])).astype(np.float32)
    expected = np.concatenate(
        [reference(TABLE.columns[e["name"]][rows], e, rescale) if e["kind"] != "categorical"
         else one_hot for e in pre.features], axis=1)
    assert x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, expected)


def test_a_single_image_feature_keeps_its_shape() -> None:
    pre = fit(["img"], numeric="standardize")
    x = pre.transform_x(TABLE, ROWS)
    assert x.shape == (200, 6, 5) and x.dtype == np.float32
    np.testing.assert_array_equal(x.reshape(200, -1),
                                  reference(IMAGES[ROWS], pre.features[0], None))


def test_unscaled_float32_rows_are_a_read_only_view_when_contiguous() -> None:
    pre = fit(["img"], numeric="none")
    for rows in (None, np.arange(10, 250)):
        x = pre.transform_x(TABLE, rows)
        assert np.shares_memory(x, IMAGES) and not x.flags.writeable
    shuffled = pre.transform_x(TABLE, ROWS[::-1])
    assert not np.shares_memory(shuffled, IMAGES) and shuffled.flags.writeable
    np.testing.assert_array_equal(shuffled, IMAGES[ROWS[::-1]])
    assert IMAGES.flags.writeable


def test_no_float64_copy_of_a_large_array(monkeypatch) -> None:
    monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", 1 << 12)
    x = np.random.default_rng(0).normal(size=(4000, 784)).astype(np.float32)  # 12.5 MB
    table = Table({"x": x, "y": np.arange(4000) % 3})
    rows = np.arange(0, 4000, 2)
    spec = PreprocessingSpec(numeric="standardize")
    pre = Preprocessor.fit(table, ["x"], "y", rows, spec, "classification", "integer")
    pre.transform_x(table, rows[:2])   # Keras imported and the layer built before measuring
    tracemalloc.start()
    Preprocessor._fit_numeric("x", x, rows, spec, "array")   # the statistics alone
    fitted = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    out = pre.transform_x(table, rows)
    transformed = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert fitted < 0.1 * x[rows].nbytes
    assert transformed < out.nbytes + 0.1 * x[rows].nbytes


def test_labels_of_mixed_types_are_coded_one_by_one() -> None:
    table = Table({"x": np.arange(4.0), "y": np.array([1, "a", 1.0, "b"], dtype=object)})
    pre = Preprocessor.fit(table, ["x"], "y", np.arange(4), PreprocessingSpec(),
                           "classification", "integer")
    assert pre.classes == [1, "a", "b"]
    assert pre.transform_y(table).tolist() == [0, 1, 0, 2]

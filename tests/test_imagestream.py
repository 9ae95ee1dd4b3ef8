"""An image folder streamed into Keras: the files decoded a batch at a time in a tf.data
pipeline, in the order and with the numbers of the same images held in memory; a file
that only fails once decoding starts is exit 2 naming it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli
from test_broken_inputs import refused
from test_folders import folder_source, image_config, image_folder, run_dir


def _experiment(tmp_path: Path, numeric: str = "none"):
    from kerastrain.config import load_config
    from kerastrain.experiment import load_experiment

    image_folder(tmp_path / "imgs")
    source = folder_source(tmp_path / "imgs")
    config = image_config(tmp_path, source, data={
        "source": source, "preprocessing": {"numeric": numeric, "rescale": 1 / 255}})
    return load_experiment(load_config(config))


@pytest.mark.parametrize("numeric", ["none", "standardize"])
def test_training_rows_stream_in_the_in_memory_order(tmp_path: Path, numeric: str) -> None:
    """The table holds file paths, no pixels; a fold's training input is an ImageStream
    whose batches, unshuffled and shuffled from a seed, are those of the in-memory
    pipeline of the decoded, preprocessed rows, to the bit."""
    from kerastrain.data.images import ImageFiles
    from kerastrain.data.imagestream import ImageStream
    from kerastrain.models.feed import _pipeline, training_input

    experiment = _experiment(tmp_path, numeric)
    column = experiment.table.columns["image"]
    assert isinstance(column, ImageFiles) and not isinstance(column, np.ndarray)
    assert column.shape == (36, 6, 6, 3)
    rows = experiment.plan.folds[0].fit_rows
    pre = experiment.preprocessor(rows)
    stream, y = experiment.arrays(pre, rows, "training rows")
    assert isinstance(stream, ImageStream) and len(stream) == len(rows)
    whole = pre.transform_x(experiment.table, rows)    # decoded, then preprocessed
    assert whole.dtype == np.float32 and (whole.min() < 0) == (numeric == "standardize")

    def batches(data) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(x.numpy(), t.numpy()) for x, t in data]

    for seed in (None, 7):
        streamed = batches(stream.keras_data(y, 5, seed))
        in_memory = batches(_pipeline(whole, y, 5, seed))
        assert len(streamed) == len(in_memory) == -(-len(rows) // 5)
        for (a, ya), (b, yb) in zip(streamed, in_memory, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ya, yb)
    given = training_input(stream, y, 5, True, 7)
    assert given["batch_size"] is None and not given["shuffle"]
    first, _ = next(iter(given["x"]))
    np.testing.assert_array_equal(first.numpy(), batches(_pipeline(whole, y, 5, 7))[0][0])


def test_standardize_statistics_are_the_decoded_arrays(tmp_path: Path) -> None:
    """Statistics of the training files, decoded a block at a time, equal those of the
    decoded array of those rows (the in-memory path's) to the bit."""
    from kerastrain.data import chunked

    experiment = _experiment(tmp_path, numeric="standardize")
    rows = experiment.plan.folds[0].fit_rows
    pre = experiment.preprocessor(rows)
    images = np.asarray(experiment.table.columns["image"])
    mean, std = chunked.mean_std(images, rows, 1 / 255)
    assert (pre.features[0]["mean"], pre.features[0]["std"]) == (mean, std)
    hand = images[rows].astype(np.float64) * (1 / 255)
    assert abs(mean - hand.mean()) < 1e-12 and abs(std - hand.std()) < 1e-12


def _truncated(path: Path) -> None:
    """The PNG signature and header kept, the pixels cut off: passes the header check,
    fails in TensorFlow's decoder."""
    path.write_bytes(path.read_bytes()[:45])


def test_an_image_that_fails_to_decode_in_training_is_named(cli: Cli, tmp_path: Path) -> None:
    image_folder(tmp_path / "imgs", per_class=4)
    _truncated(tmp_path / "imgs" / "square" / "002.png")
    result = cli("fit", image_config(tmp_path, folder_source(tmp_path / "imgs")))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "square/002.png: not a readable image" in result.stderr
    assert "Invalid PNG data" in result.stderr


def test_predict_streams_a_folder_and_names_files(cli: Cli, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """predict on a folder decodes it a batch at a time (8 of its 12 files), each row
    named by its file; a file that does not decode is exit 2 naming it."""
    from kerastrain.data.imagestream import ImageStream

    image_folder(tmp_path / "imgs")
    config = image_config(tmp_path, folder_source(tmp_path / "imgs"),
                          training={"epochs": 1, "batch_size": 8})
    assert cli("fit", config).exit_code == 0
    run = run_dir(tmp_path)
    out = tmp_path / "pred.csv"
    streamed = []
    keras_data = ImageStream.keras_data
    monkeypatch.setattr(ImageStream, "keras_data", lambda self, *args: streamed.append(
        (len(self), *args)) or keras_data(self, *args))
    result = cli("predict", run, tmp_path / "imgs" / "circle", "-o", out)
    assert result.exit_code == 0, result.output
    assert streamed == [(12, None, 8)]
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"{i:03d}.png" for i in range(12)]
    assert json.loads((run / "preprocessing.json").read_text())["input_shape"] == [6, 6, 3]
    _truncated(tmp_path / "imgs" / "circle" / "005.png")
    refused(cli("predict", run, tmp_path / "imgs" / "circle", "-o", out, "--overwrite"),
            "circle/005.png: not a readable image")


def test_a_test_folder_beside_the_source_folder(cli: Cli, tmp_path: Path) -> None:
    """data.test as a second image folder: one table of both folders' files (still
    undecoded), the test files scored once."""
    image_folder(tmp_path / "train", per_class=8)
    image_folder(tmp_path / "test", per_class=4, seed=1)
    source = folder_source(tmp_path / "train")
    config = image_config(tmp_path, source,
                          data={"source": source, "test": folder_source(tmp_path / "test"),
                                "preprocessing": {"numeric": "none", "rescale": 1 / 255}},
                          validation={"validation_split": 0.25, "test_split": 0.0},
                          training={"epochs": 2, "batch_size": 8})
    from kerastrain.config import load_config
    from kerastrain.data.images import ImageFiles
    from kerastrain.experiment import load_experiment

    images = load_experiment(load_config(config)).table.columns["image"]
    assert isinstance(images, ImageFiles) and len(images) == 36
    assert images.paths[24].endswith("test/circle/000.png")
    result = cli("fit", config)
    assert result.exit_code == 0, result.output
    run = run_dir(tmp_path)
    assert json.loads((run / "splits.json").read_text())["test"] == list(range(24, 36))
    assert "accuracy" in json.loads((run / "metrics.json").read_text())["test"]

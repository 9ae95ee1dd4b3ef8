"""Folder sources: image_folder and text_folder (one subfolder per class), fit, evaluate and
predict on them, folds over files, a corrupt image refused."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, Cli, write_config
from test_broken_inputs import refused

CLASSES = ("circle", "cross", "square")


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


write_png = _example("make_digit_images").write_png


def _pattern(kind: int, rng: np.random.Generator) -> np.ndarray:
    """A 6x6 RGB image of class `kind`: one bright channel, noise on top."""
    image = rng.integers(0, 60, size=(6, 6, 3))
    image[..., kind] += 180
    return image.astype(np.uint8)


def image_folder(root: Path, per_class: int = 12, seed: int = 0) -> tuple[np.ndarray, list]:
    """PNGs under root/<class>/; the images and labels in the order the source reads them."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for kind, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = _pattern(kind, rng)
            write_png(root / name / f"{i:03d}.png", image)
            images.append(image)
            labels.append(name)
    return np.stack(images), labels


def image_config(tmp_path: Path, source: dict, layers: list | None = None, **changes) -> Path:
    config = {
        "name": "images", "seed": 3,
        "data": {"source": source,
                 "preprocessing": {"numeric": "none", "rescale": 1 / 255}},
        "model": {"layers": layers or [{"type": "Flatten"},
                                       {"type": "Dense", "units": 3, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.05},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "training": {"epochs": 4, "batch_size": 8},
        "validation": {"validation_split": 0.25, "test_split": 0.25},
        "output": {"runs_dir": str(tmp_path / "runs")},
    }
    config.update(changes)
    return write_config(tmp_path / "images.yaml", config)


def run_dir(tmp_path: Path) -> Path:
    return next((tmp_path / "runs").iterdir())


def folder_source(root: Path) -> dict:
    return {"type": "image_folder", "path": str(root), "image_size": [6, 6]}


def test_image_folder_fit_evaluate_predict(cli: Cli, tmp_path: Path) -> None:
    image_folder(tmp_path / "imgs")
    result = cli("fit", image_config(tmp_path, folder_source(tmp_path / "imgs")))
    assert result.exit_code == 0, result.output
    run = run_dir(tmp_path)
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["target"]["classes"] == list(CLASSES)   # labels: the folder names
    assert pre["input_shape"] == [6, 6, 3]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8           # the classes differ by colour

    again = cli("evaluate", run, "--data", tmp_path / "imgs", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["rows"] == 36

    out = tmp_path / "pred.csv"
    predicted = cli("predict", run, tmp_path / "imgs" / "cross", "-o", out)
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"{i:03d}.png" for i in range(12)]
    assert sum(r["label"] == "cross" for r in rows) >= 10

    one = tmp_path / "one.csv"
    assert cli("predict", run, tmp_path / "imgs" / "square" / "004.png", "-o", one).exit_code == 0
    single = list(csv.DictReader(one.open()))
    assert [r["file"] for r in single] == ["004.png"]
    several = tmp_path / "several.csv"
    files = [tmp_path / "imgs" / "square" / "004.png", tmp_path / "imgs" / "circle" / "001.png"]
    assert cli("predict", run, *files, "-o", several).exit_code == 0
    assert [r["file"] for r in csv.DictReader(several.open())] == [str(f) for f in files]
    refused(cli("predict", run, *files, tmp_path / "nothing.png", "-o", several,
                "--overwrite"), "nothing.png: no such data file")
    same = next(r for r in csv.DictReader(_predict_all(cli, run, tmp_path))
                if r["file"] == "square/004.png")
    assert {**single[0], "file": same["file"]} == same


def _predict_all(cli: Cli, run: Path, tmp_path: Path):
    out = tmp_path / "all.csv"
    assert cli("predict", run, tmp_path / "imgs", "-o", out, "--overwrite").exit_code == 0
    return out.open()


def test_a_folder_trains_as_the_same_images_in_memory(cli: Cli, tmp_path: Path) -> None:
    """The folder's rows (class folders sorted, then files), streamed from the files, and
    an NPZ of the same images and labels in that order, held in memory, give the same
    splits, history and scores (shuffled from the same seed), to the bit."""
    images, labels = image_folder(tmp_path / "imgs")
    np.savez(tmp_path / "same.npz", image=images, label=np.asarray(labels))
    scores = []
    for name, source in (("folder", folder_source(tmp_path / "imgs")),
                         ("npz", {"type": "npz", "path": str(tmp_path / "same.npz")})):
        config = image_config(tmp_path, source, name=name,
                              output={"runs_dir": str(tmp_path / name)})
        if name == "npz":
            data = __import__("yaml").safe_load(config.read_text())
            data["data"]["target"] = "label"
            write_config(config, data)
        assert cli("fit", config).exit_code == 0
        run = next((tmp_path / name).iterdir())
        scores.append((json.loads((run / "metrics.json").read_text()),
                       json.loads((run / "splits.json").read_text()),
                       (run / "history.csv").read_text()))
    assert scores[0] == scores[1]


def test_kfold_over_files(cli: Cli, tmp_path: Path) -> None:
    """Folds of files, stratified; each fold's standardization fitted on its own training
    files (the hand computation on their pixels)."""
    images, _ = image_folder(tmp_path / "imgs", per_class=6)
    source = folder_source(tmp_path / "imgs")
    config = image_config(tmp_path, source,
                          data={"source": source, "preprocessing": {
                              "numeric": "standardize", "rescale": 1 / 255}},
                          validation={"scheme": "kfold", "n_splits": 3},
                          training={"epochs": 2, "batch_size": 8})
    result = cli("fit", config)
    assert result.exit_code == 0, result.output
    run = run_dir(tmp_path)
    splits = json.loads((run / "splits.json").read_text())
    held = sorted(i for fold in splits["folds"] for i in fold["validation"])
    assert held == list(range(18))                    # every file scored once
    for fold in splits["folds"]:                       # stratified: 2 files per class
        assert sorted(np.bincount(np.asarray(fold["validation"]) // 6)) == [2, 2, 2]
        fitted = json.loads((run / "folds" / fold["name"] / "preprocessing.json").read_text())
        fit_rows = np.setdiff1d(fold["train"], fold.get("inner_validation", []))
        pixels = images[fit_rows].astype(np.float64) * (1 / 255)
        assert fitted["features"][0]["mean"] == pytest.approx(pixels.mean(), rel=1e-12)
        assert fitted["features"][0]["std"] == pytest.approx(pixels.std(), rel=1e-12)


def test_a_corrupt_image_is_refused_naming_the_file(cli: Cli, tmp_path: Path) -> None:
    image_folder(tmp_path / "imgs", per_class=4)
    (tmp_path / "imgs" / "cross" / "002.png").write_bytes(b"not a png at all")
    result = cli("fit", image_config(tmp_path, folder_source(tmp_path / "imgs")))
    refused(result, "cross/002.png", "not a readable image")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("source, text", [
    ({"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, "cannot both be true"),
    ({"class_names": ["circle", "triangle"]}, "no class folder 'triangle'"),
])
def test_bad_folder_options_are_refused(cli: Cli, tmp_path: Path, source: dict,
                                        text: str) -> None:
    image_folder(tmp_path / "imgs", per_class=2)
    config = image_config(tmp_path, {**folder_source(tmp_path / "imgs"), **source})
    refused(cli("fit", config), text)


def test_augmentation_layers_train_only(cli: Cli, tmp_path: Path) -> None:
    """RandomFlip and RandomRotation in the layer stack change training batches only:
    predictions are the same every time, and equal the model without them."""
    image_folder(tmp_path / "imgs")
    layers = [{"type": "RandomFlip"}, {"type": "RandomRotation", "factor": 0.2},
              {"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}]
    assert cli("fit", image_config(tmp_path, folder_source(tmp_path / "imgs"),
                                   layers)).exit_code == 0
    run = run_dir(tmp_path)
    first = _predict_all(cli, run, tmp_path).read()
    assert _predict_all(cli, run, tmp_path).read() == first

    from kerastrain import _keras

    keras = _keras.keras()
    model = keras.saving.load_model(run / "model.keras")
    x = np.random.default_rng(0).random((4, 6, 6, 3)).astype("float32")
    plain = keras.Sequential([model.layers[2], model.layers[3]])
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert not np.allclose(model(x, training=True), plain(x))


def text_folder(root: Path) -> None:
    topics = {"sport": "goal match team score player coach league win",
              "food": "bread cheese soup recipe oven salt dinner taste"}
    rng = np.random.default_rng(1)
    for topic, words in topics.items():
        (root / topic).mkdir(parents=True)
        vocabulary = words.split() + ["the", "a", "today", "we", "and"]
        for i in range(15):
            (root / topic / f"{i:02d}.txt").write_text(" ".join(rng.choice(vocabulary, 9)))


def test_text_folder_fit_evaluate_predict(cli: Cli, tmp_path: Path) -> None:
    text_folder(tmp_path / "texts")
    config = image_config(tmp_path, {"type": "text_folder", "path": str(tmp_path / "texts")},
                          [{"type": "Dense", "units": 2, "activation": "softmax"}],
                          data={"source": {"type": "text_folder",
                                           "path": str(tmp_path / "texts")}},
                          training={"epochs": 15, "batch_size": 8})
    result = cli("fit", config)
    assert result.exit_code == 0, result.output
    run = run_dir(tmp_path)
    pre = json.loads((run / "preprocessing.json").read_text())
    assert [f["kind"] for f in pre["features"]] == ["text"]
    assert pre["target"]["classes"] == ["food", "sport"]
    assert json.loads((run / "metrics.json").read_text())["test"]["accuracy"] > 0.8
    assert cli("evaluate", run, "--data", tmp_path / "texts").exit_code == 0
    out = tmp_path / "pred.csv"
    assert cli("predict", run, tmp_path / "texts" / "food", "-o", out).exit_code == 0
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["file"] == "00.txt" and len(rows) == 15


def test_text_vocabulary_is_adapted_on_each_folds_training_files(cli: Cli,
                                                                 tmp_path: Path) -> None:
    text_folder(tmp_path / "texts")
    # a word of two files only (a token of one training row alone is never kept: docs/columns.md)
    for name in ("07", "08"):
        (tmp_path / "texts" / "food" / f"{name}.txt").write_text(
            "zebra bread soup the oven salt taste")
    config = image_config(tmp_path, {"type": "text_folder", "path": str(tmp_path / "texts")},
                          [{"type": "Dense", "units": 2, "activation": "softmax"}],
                          data={"source": {"type": "text_folder",
                                           "path": str(tmp_path / "texts")}},
                          training={"epochs": 1, "batch_size": 8},
                          validation={"scheme": "kfold", "n_splits": 3, "refit": False})
    assert cli("fit", config, "--set", "runtime.workers=1").exit_code == 0  # folds here
    run = run_dir(tmp_path)
    splits = json.loads((run / "splits.json").read_text())
    rows = {7, 8}  # food/07.txt and 08.txt: the classes in sorted order, food first
    seen = set()
    for fold in splits["folds"]:
        pre = json.loads((run / "folds" / fold["name"] / "preprocessing.json").read_text())
        vocabulary = pre["features"][0]["vocabulary"]
        both = rows <= set(fold["train"])
        assert ("zebra" in vocabulary) == both
        seen.add(both)
    assert seen == {True, False}  # some fold trained on both files, some did not


@pytest.mark.parametrize("options", [
    {"image_size": [6, 6]},
    {"image_size": [9, 4], "color_mode": "grayscale", "crop_to_aspect_ratio": True},
    {"image_size": [5, 8], "color_mode": "rgba", "pad_to_aspect_ratio": True,
     "interpolation": "nearest"},
])
def test_images_are_keras_image_dataset_from_directory_rounded(tmp_path: Path,
                                                               options: dict) -> None:
    """The same files, labels and pixels (to the nearest whole value) as Keras's own
    function with the same options."""
    from kerastrain import _keras
    from kerastrain.config.schema import SourceSpec
    from kerastrain.data.folders import read_folder

    image_folder(tmp_path / "imgs", per_class=3)
    table = read_folder(SourceSpec(type="image_folder", path=str(tmp_path / "imgs"), **options))
    keras_options = {**options, "image_size": tuple(options["image_size"])}
    data = _keras.keras().utils.image_dataset_from_directory(
        tmp_path / "imgs", shuffle=False, batch_size=4, verbose=False, **keras_options)
    pixels = np.concatenate([x.numpy() for x, _ in data])
    labels = np.concatenate([y.numpy() for _, y in data])
    np.testing.assert_array_equal(table.columns["image"], np.round(pixels))
    assert [CLASSES[i] for i in labels] == list(table.columns["label"])
    assert table.files[:2] == ["circle/000.png", "circle/001.png"]


def test_files_are_listed_and_scanned_in_path_order(tmp_path: Path, monkeypatch) -> None:
    """Files sort as paths do, part by part ('x/b' before 'x-a'), each thread reads a run
    of files, and the first bad file in that order is the one named."""
    from kerastrain.config.schema import SourceSpec
    from kerastrain.data import folders, images
    from kerastrain.errors import DataError

    image_folder(tmp_path / "data", per_class=4)
    for name in ("x-a.png", "x/b.png", "x/c/d.png", "X.png"):
        (tmp_path / "data" / CLASSES[0] / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / CLASSES[0] / name).write_bytes(
            next((tmp_path / "data" / CLASSES[0]).glob("*.png")).read_bytes())
    spec = SourceSpec(type="image_folder", path=str(tmp_path / "data"))
    files, labels = folders.class_files(tmp_path / "data", spec)
    assert files == sorted(files) and len(files) == len(set(files)) == len(labels)
    assert [f.name for f in files if f.name in ("x-a.png", "b.png", "d.png")] == \
        ["b.png", "d.png", "x-a.png"]
    monkeypatch.setattr(images, "SCAN_RUN", 3)
    monkeypatch.setattr(images, "SCAN_BATCH", 2)
    digests = images.scan(files)
    assert [bytes(d) for d in digests] == [images._digest(f) for f in files]
    table = folders.read_folder(spec.model_copy(update={"path": str(tmp_path / "data") + "/"}))
    assert table.files == [str(f.relative_to(tmp_path / "data")) for f in files]
    for bad in (files[7], files[4]):
        bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=f"{files[4]}: not a readable image"):
        images.scan(files)

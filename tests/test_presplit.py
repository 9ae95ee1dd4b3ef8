"""Data already split in files: data.source (training rows), data.validation, data.test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli, iris_config, write_config
from test_broken_inputs import refused

HEADER = "sepal_length,sepal_width,petal_length,petal_width,species"


def iris_files(folder: Path, sizes: tuple[int, ...] = (90, 30, 30)) -> list[Path]:
    """Iris, shuffled, written as consecutive CSV files of `sizes` rows."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    order = np.random.default_rng(0).permutation(150)
    names = np.asarray(iris.target_names)[iris.target]
    lines = [",".join([*map(str, iris.data[i]), names[i]]) for i in order]
    paths, start = [], 0
    for part, size in zip(("train", "valid", "test"), sizes, strict=False):
        path = folder / f"{part}.csv"
        path.write_text("\n".join([HEADER, *lines[start:start + size]]) + "\n")
        paths.append(path)
        start += size
    return paths


def config(tmp_path: Path, data: dict, validation: dict) -> Path:
    cfg = iris_config(tmp_path / "runs", data={**data, "target": "species"},
                      validation=validation)
    cfg["training"]["epochs"] = 3
    return write_config(tmp_path / "split.yaml", cfg)


def run_files(tmp_path: Path) -> tuple[Path, dict, dict]:
    run = next((tmp_path / "runs").iterdir())
    return (run, json.loads((run / "splits.json").read_text()),
            json.loads((run / "metrics.json").read_text()))


def test_train_validation_and_test_files(cli: Cli, tmp_path: Path) -> None:
    train, valid, test = iris_files(tmp_path)
    data = {"source": {"type": "csv", "path": str(train)},
            "validation": {"type": "csv", "path": str(valid)},
            "test": {"type": "csv", "path": str(test)}}
    result = cli("fit", config(tmp_path, data, {"test_split": 0.0}))
    assert result.exit_code == 0, result.output
    run, splits, metrics = run_files(tmp_path)
    fold = splits["folds"][0]
    assert fold["train"] == list(range(90))
    assert fold["validation"] == list(range(90, 120))
    assert splits["test"] == list(range(120, 150))
    assert set(metrics) == {"validation", "test"}
    scored = cli("evaluate", run, "--json")         # the test file's rows, by default
    assert scored.exit_code == 0, scored.output
    again = json.loads(scored.stdout)
    assert again["split"] == "test" and again["rows"] == 30
    assert again["metrics"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_a_test_file_with_cross_validation_on_the_source(cli: Cli, tmp_path: Path) -> None:
    train, _, test = iris_files(tmp_path, (120, 0, 30))
    data = {"source": {"type": "csv", "path": str(train)},
            "test": {"type": "csv", "path": str(test)}}
    result = cli("fit", config(tmp_path, data, {"scheme": "kfold", "n_splits": 3}),
                 "--set", "runtime.workers=1")  # the folds here: no TensorFlow to start
    assert result.exit_code == 0, result.output
    _, splits, metrics = run_files(tmp_path)
    assert splits["test"] == list(range(120, 150))
    held = sorted(i for f in splits["folds"] for i in f["validation"])
    assert held == list(range(120))                  # the folds never see the test file
    assert "test" in metrics


@pytest.mark.parametrize("parts, validation, text", [
    (("validation",), {"scheme": "kfold", "n_splits": 3}, "validation.scheme"),
    (("validation",), {"validation_split": 0.1}, "remove validation_split"),
    (("test",), {"test_split": 0.2}, "set test_split to 0"),
])
def test_the_validation_section_must_agree_with_the_files(cli: Cli, tmp_path: Path,
                                                          parts: tuple, validation: dict,
                                                          text: str) -> None:
    train, valid, test = iris_files(tmp_path)
    data = {"source": {"type": "csv", "path": str(train)}}
    data.update({p: {"type": "csv", "path": str({"validation": valid, "test": test}[p])}
                 for p in parts})
    refused(cli("fit", config(tmp_path, data, validation)), text)


def test_a_part_without_the_sources_columns_is_refused(cli: Cli, tmp_path: Path) -> None:
    train, _, test = iris_files(tmp_path)
    test.write_text(test.read_text().replace("petal_width", "petal_w"))
    data = {"source": {"type": "csv", "path": str(train)},
            "test": {"type": "csv", "path": str(test)}}
    refused(cli("fit", config(tmp_path, data, {"test_split": 0.0})), "test.csv",
            "lacks petal_width", "data.test")

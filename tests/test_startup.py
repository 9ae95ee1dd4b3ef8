"""Start-up: the commands that build no model import no TensorFlow (nor Keras), and none
imports a slow package it does not use: matplotlib only to draw learning curves,
scikit-learn only to load a bundled set or split data, SciPy only for a t quantile.
Each command runs through the entry point in a fresh interpreter. How fast `--help` is, is
measured by benchmarks/compare.py (`--only help`), not by a timed test."""

from __future__ import annotations

import pytest

from conftest import heavy_modules_after, iris_config, write_config


@pytest.mark.parametrize("args", [
    ["--help"],
    ["fit", "--help"],
    ["list", "layers"],
    ["list", "activations"],
    ["list", "schedules", "--json"],
    ["schema"],
    ["init", "--output", "-"],
    ["init", "--dataset", "digits", "--output", "-"],
])
def test_commands_import_no_slow_package(tmp_path, args) -> None:
    code, heavy = heavy_modules_after(tmp_path, *args)
    assert code == 0
    assert heavy == [], f"kerastrain {' '.join(args)} imported {heavy}"


def test_runs_imports_no_slow_package(tmp_path) -> None:
    (tmp_path / "runs").mkdir()
    code, heavy = heavy_modules_after(tmp_path, "runs", tmp_path / "runs")
    assert code == 0
    assert heavy == []


def test_validate_schema_stage_imports_no_slow_package(tmp_path) -> None:
    config = iris_config(tmp_path / "runs")
    config["training"]["epochs"] = "many"
    path = write_config(tmp_path / "bad.yaml", config)
    code, heavy = heavy_modules_after(tmp_path, "validate", path)
    assert code == 2
    assert heavy == []

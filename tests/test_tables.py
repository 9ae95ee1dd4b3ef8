"""Messy tables end to end through the CLI: a raw CSV with missing values, markers, a
date, free text, an identifier and rows without a target trains with no preprocessing
keys; `validate` says each column's kind; `predict` equals `evaluate` on the same rows and
takes new rows with empty fields, unseen categories and later dates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import Cli, write_config

HEADER = ["id", "age", "income", "plan", "signup", "note", "member", "churn"]
WORDS = ["great", "slow", "support", "price", "fast", "bug", "love", "hate"]


def messy_rows(n: int, seed: int, year: int = 2020, new: bool = False) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age = int(rng.integers(18, 80))
        plan = ["basic", "pro", "team", *(["premium"] if new else [])][rng.integers(3 + new)]
        note = " ".join(rng.choice(WORDS, 4))
        day = np.datetime64(f"{year}-01-01") + int(rng.integers(0, 700))
        churn = ["stay", "leave"][int((age > 45) ^ (plan == "pro") ^ ("hate" in note))]
        row = [f"u{seed}-{i:04d}", str(age), f"{rng.normal(5e4, 1.5e4):.2f}", plan, str(day),
               note, ["yes", "no"][rng.integers(2)], churn]
        for j, marker, share in ((1, "", 0.1), (2, "?", 0.05), (3, "NA", 0.05), (4, "", 0.05)):
            if rng.random() < share:
                row[j] = marker
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def messy_config(tmp: Path, source: str, layers: tuple = (), **data) -> Path:
    return write_config(tmp / "messy.yaml", {
        "name": "messy", "seed": 0,
        "data": {"source": {"type": "csv", "path": source}, "target": "churn", **data},
        "model": {"layers": [*layers, {"type": "Dense", "units": 8, "activation": "relu"},
                             {"type": "Dense", "units": 2, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.02},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "training": {"epochs": 3, "batch_size": 32},
        "validation": {"validation_split": 0.2, "test_split": 0.2},
        "output": {"runs_dir": str(tmp / "runs")}})


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("messy")
    rows = messy_rows(150, 0)
    for row in rows[:6]:
        row[-1] = ""                                  # six rows without a target
    write_csv(tmp / "train.csv", rows)
    result = Cli()("fit", messy_config(tmp, "train.csv"), "--json")
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"]), tmp


def test_validate_says_each_columns_kind_encoding_and_why(cli: Cli, messy_run) -> None:
    run, tmp = messy_run
    result = cli("validate", messy_config(tmp, "train.csv"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    kinds = {c["column"]: (c["kind"], c["encoding"]) for c in summary["columns"]}
    assert kinds == {"age": ("numeric", "standardize"), "income": ("numeric", "standardize"),
                     "plan": ("categorical", "one_hot"), "signup": ("date", "parts"),
                     "note": ("text", "multi_hot"), "member": ("binary", "binary"),
                     "id": ("identifier", "dropped")}
    assert all(c["why"] for c in summary["columns"])
    warnings = " ".join(summary["warnings"])
    assert "6 rows have no value of the target 'churn' and are left out" in warnings
    assert "column 'id' looks like an identifier" in warnings
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["data"]["columns"] == summary["columns"]


def test_excluded_and_declared_columns(cli: Cli, messy_run) -> None:
    _, tmp = messy_run
    config = messy_config(tmp, "train.csv", exclude=["note"],
                          columns={"age": {"kind": "categorical"}})
    summary = json.loads(cli("validate", config, "--json").stdout)
    kinds = {c["column"]: c["kind"] for c in summary["columns"]}
    assert "note" not in kinds and kinds["age"] == "categorical"
    bad = messy_config(tmp, "train.csv", columns={"agee": {"kind": "numeric"}})
    result = cli("validate", bad)
    assert result.exit_code == 2 and "data.columns.agee" in result.stderr
    assert "Did you mean 'age'" in result.stderr


def test_predict_equals_evaluate_on_the_same_rows(cli: Cli, messy_run) -> None:
    run, tmp = messy_run
    rows = messy_rows(40, 1)
    data = write_csv(tmp / "scored.csv", rows)
    scores = json.loads(cli("evaluate", run, "--data", data, "--json").stdout)
    result = cli("predict", run, data, "--output", tmp / "p.csv", "--overwrite", "--json")
    assert result.exit_code == 0, result.output
    with open(tmp / "p.csv") as handle:
        predicted = [r["churn"] for r in csv.DictReader(handle)]
    accuracy = np.mean([p == r[-1] for p, r in zip(predicted, rows, strict=True)])
    assert scores["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_predict_takes_empty_fields_unseen_categories_and_later_dates(cli: Cli,
                                                                      messy_run) -> None:
    run, tmp = messy_run
    rows = [r[:-1] for r in messy_rows(30, 2, year=2031, new=True)]
    rows[0][1:7] = ["", "", "", "", "", ""]                 # every feature empty
    rows[1][2] = "lots"                                    # not a number
    data = write_csv(tmp / "new.csv", rows, HEADER[:-1])
    result = cli("predict", run, data, "--output", tmp / "new_p.csv", "--keep", "id",
                 "--overwrite", "--json")
    assert result.exit_code == 0, result.output
    notes = " ".join(json.loads(result.stdout)["notes"])
    assert "'premium'" in notes and "'other' bucket" in notes
    assert "column 'income': 1 values are not numbers ('lots')" in notes
    with open(tmp / "new_p.csv") as handle:
        out = list(csv.DictReader(handle))
    assert [r["id"] for r in out] == [r[0] for r in rows]   # --keep: joins back by id
    assert list(out[0])[:2] == ["id", "churn"]
    assert all(r["churn"] in ("stay", "leave") for r in out)


def test_kept_numeric_ids_come_back_as_written(cli: Cli, messy_run) -> None:
    """`--keep id` with ids that read as numbers (`00017`, `1042`): the output holds the
    input's text, not the float the column was parsed as (`17.0`)."""
    run, tmp = messy_run
    rows = [r[:-1] for r in messy_rows(6, 3)]
    ids = ["00017", "1042", "7", "0099", "31", "100000"]
    for row, given in zip(rows, ids, strict=True):
        row[0] = given
    data = write_csv(tmp / "numeric_ids.csv", rows, HEADER[:-1])
    result = cli("predict", run, data, "--output", tmp / "ids_p.csv", "--keep", "id",
                 "--overwrite")
    assert result.exit_code == 0, result.output
    with open(tmp / "ids_p.csv") as handle:
        assert [r["id"] for r in csv.DictReader(handle)] == ids


def test_a_regression_target_in_its_thousands_trains_and_predicts_in_its_units(
        cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = 3000.0 + 400.0 * x[:, 0] - 200.0 * x[:, 1]
    write_csv(tmp_path / "r.csv", [[f"{a:.4f}", f"{b:.4f}", f"{t:.2f}"]
                                   for (a, b), t in zip(x, y, strict=True)], ["a", "b", "t"])
    config = write_config(tmp_path / "r.yaml", {
        "name": "r", "seed": 0, "data": {"source": {"type": "csv", "path": "r.csv"},
                                         "target": "t"},
        "model": {"layers": [{"type": "Dense", "units": 1}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.05}, "loss": "mse",
                    "metrics": ["mae"]},
        "training": {"epochs": 30, "batch_size": 32},
        "validation": {"validation_split": 0.2, "test_split": 0.2},
        "output": {"runs_dir": str(tmp_path / "runs")}})
    result = cli("fit", config, "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    mae = json.loads(cli("evaluate", run, "--json").stdout)["metrics"]["mae"]
    assert mae < 60          # without the scale, 30 epochs leave it near 3000
    cli("predict", run, tmp_path / "r.csv", "--output", tmp_path / "p.csv")
    with open(tmp_path / "p.csv") as handle:
        predicted = np.array([float(r["t"]) for r in csv.DictReader(handle)])
    assert abs(predicted.mean() - y.mean()) < 60


def test_a_text_column_as_token_ids_feeds_an_embedding(cli: Cli, messy_run) -> None:
    run, tmp = messy_run
    embed = ({"type": "Embedding", "input_dim": 20, "output_dim": 4},
             {"type": "GlobalAveragePooling1D"})
    config = messy_config(tmp, "train.csv", embed, features=["note"], columns={
        "note": {"encoding": "sequence", "sequence_length": 6, "max_tokens": 20}})
    result = cli("fit", config, "--json")
    assert result.exit_code == 0, result.output
    pre = json.loads((Path(json.loads(result.stdout)["run_dir"]) / "preprocessing.json")
                     .read_text())
    assert pre["input_shape"] == [6] and len(pre["features"][0]["vocabulary"]) <= 18


def test_the_penguins_example_validates_from_its_raw_table(cli: Cli) -> None:
    pytest.importorskip("palmerpenguins")
    config = Path(__file__).resolve().parents[1] / "configs" / "penguins.yaml"
    result = cli("validate", config, "--json")
    assert result.exit_code == 0, result.output
    kinds = {c["column"]: c["kind"] for c in json.loads(result.stdout)["columns"]}
    assert kinds["Date Egg"] == "date" and kinds["Comments"] == "text"
    assert kinds["Individual ID"] == "identifier" and kinds["Region"] == "constant"
    assert kinds["Sex"] == "categorical" and kinds["Body Mass (g)"] == "numeric"


def test_a_csv_in_a_package_that_is_not_installed(cli: Cli, tmp_path: Path) -> None:
    config = messy_config(tmp_path, "data/rows.csv")
    data = yaml.safe_load(config.read_text())
    data["data"]["source"]["package"] = "no_such_pkg_x"
    write_config(config, data)
    result = cli("validate", config)
    assert result.exit_code == 2
    assert "no installed package 'no_such_pkg_x'" in result.stderr
    assert "pip install no_such_pkg_x" in result.stderr

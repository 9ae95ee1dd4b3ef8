"""`kerastrain runs`: listing, filters, sorting, JSON/CSV, show and compare, over
synthetic run directories (written here, no training) and damaged or foreign entries."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kerastrain.runs import metric_key, overrides_of
from kerastrain.runview import flatten


def make_run(runs_dir: Path, name: str, stamp: str, status: str = "completed",
             lr: float = 0.01, val_loss: float = 0.5, accuracy: float = 0.9,
             test: dict | None = None) -> Path:
    """A run directory as `fit` leaves it, minus the model: run.json, metrics.json and
    config.yaml."""
    path = runs_dir / f"{name}-{stamp}-{abs(hash((name, stamp))) % 0xffff:04x}"
    path.mkdir(parents=True)
    command = ["kerastrain", "fit", "cfg.yaml", "--set",
               f"compile.optimizer.learning_rate={lr}", "--quiet"]
    (path / "run.json").write_text(json.dumps({
        "status": status, "started_at": f"2026-11-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:"
                                        f"{stamp[13:15]}+00:00", "command": command}))
    metrics = {"validation": {"loss": val_loss, "accuracy": accuracy}}
    if test:
        metrics["test"] = test
    (path / "metrics.json").write_text(json.dumps(metrics))
    config = {"name": name, "seed": 0,
              "data": {"source": {"type": "sklearn", "name": "iris"}, "target": "target"},
              "model": {"layers": [{"type": "Dense", "units": 16}, {"type": "Dense",
                                                                      "units": 3}]},
              "compile": {"optimizer": {"type": "Adam", "learning_rate": lr},
                          "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
              "training": {"epochs": 10, "batch_size": 16}}
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    make_run(runs, "iris-mlp", "20261120-100000", lr=0.01, val_loss=0.40, accuracy=0.90,
             test={"loss": 0.5, "accuracy": 0.85})
    make_run(runs, "iris-mlp", "20261120-110000", lr=0.1, val_loss=0.20, accuracy=0.95)
    make_run(runs, "digits-mlp", "20261120-120000", lr=0.05, val_loss=0.30, accuracy=0.97)
    make_run(runs, "digits-mlp", "20261120-130000", status="failed", lr=1.0, val_loss=9.0)
    broken = runs / "iris-mlp-20261120-140000-dead"  # half-written: run.json cut short
    broken.mkdir()
    (broken / "run.json").write_text('{"status": "runn')
    starting = runs / "iris-mlp-20261120-150000-beef"  # created, run.json not yet written
    starting.mkdir()
    (starting / "config.yaml").write_text("name: iris-mlp\n")
    (runs / "notes.txt").write_text("a stray file")
    (runs / "plots").mkdir()  # a foreign folder
    (runs / "sweep-lr").mkdir()  # a sweep folder with its own config
    (runs / "sweep-lr" / "config.yaml").write_text("name: iris-mlp\n")
    return runs


def _json(cli, *args) -> dict:
    result = cli("runs", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lists_runs_and_survives_damaged_and_foreign_entries(cli, runs_dir) -> None:
    runs = _json(cli, runs_dir)["runs"]
    assert len(runs) == 6
    by_dir = {Path(r["run_dir"]).name: r for r in runs}
    assert by_dir["iris-mlp-20261120-140000-dead"]["status"] == "unreadable"
    assert by_dir["iris-mlp-20261120-150000-beef"]["status"] == "unreadable"
    assert not {"notes.txt", "plots", "sweep-lr"} & set(by_dir)
    newest = next(r for r in runs if r["status"] == "failed")
    assert newest["name"] == "digits-mlp"
    assert newest["overrides"] == {"compile.optimizer.learning_rate": 1.0}
    assert set(runs[0]) >= {"run_dir", "name", "status", "started_at", "metrics", "overrides"}
    table = cli("runs", runs_dir)
    assert table.exit_code == 0 and "unreadable" in table.stdout


def test_filters(cli, runs_dir) -> None:
    assert {r["name"] for r in _json(cli, runs_dir, "--name", "digits")["runs"]} == \
        {"digits-mlp"}
    assert len(_json(cli, runs_dir, "--name", "IRIS-*")["runs"]) == 4
    assert len(_json(cli, runs_dir, "--name", "*-mlp")["runs"]) == 6
    completed = _json(cli, runs_dir, "--status", "completed")["runs"]
    assert len(completed) == 3 and {r["status"] for r in completed} == {"completed"}
    both = _json(cli, runs_dir, "--status", "failed", "--status", "unreadable")["runs"]
    assert len(both) == 3
    result = cli("runs", runs_dir, "--status", "complete")
    assert result.exit_code == 2 and "Did you mean 'completed'" in result.stderr


@pytest.mark.parametrize("key", ["val_loss", "validation.loss", "loss"])
def test_sort_lower_is_better_for_loss(cli, runs_dir, key) -> None:
    data = _json(cli, runs_dir, "--status", "completed", "--sort", key)
    assert [r["metrics"]["validation"]["loss"] for r in data["runs"]] == [0.2, 0.3, 0.4]
    assert data["sort"]["direction"] == "lower"


def test_sort_higher_is_better_for_accuracy_and_says_so(cli, runs_dir) -> None:
    result = cli("runs", runs_dir, "--sort", "val_accuracy")
    assert result.exit_code == 0
    assert "higher is better" in result.stderr
    data = _json(cli, runs_dir, "--sort", "validation.accuracy")
    values = [r["metrics"].get("validation", {}).get("accuracy") for r in data["runs"]]
    assert values[:4] == [0.97, 0.95, 0.9, 0.9] and values[4:] == [None, None]


def test_sort_by_an_unknown_metric(cli, runs_dir) -> None:
    result = cli("runs", runs_dir, "--sort", "test.acuracy")
    assert result.exit_code == 2
    assert "Did you mean 'test.accuracy'" in result.stderr


def test_csv(cli, runs_dir) -> None:
    result = cli("runs", runs_dir, "--csv", "--status", "completed")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    assert {"run_dir", "name", "status", "validation.loss", "test.accuracy",
            "set:compile.optimizer.learning_rate"} <= set(rows[0])


def test_sweep_manifest(cli, runs_dir, tmp_path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    listed = sorted(p for p in runs_dir.iterdir() if p.name.startswith("iris-mlp-202611201"))
    with open(sweep / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "overrides", "run_dir", "status"])
        writer.writerows([i, "", str(p), "completed"] for i, p in enumerate(listed[:2]))
        writer.writerow([2, "", "", "pending"])
    runs = _json(cli, "--sweep", sweep)["runs"]
    assert [r["run_dir"] for r in runs] == [str(p) for p in listed[:2]]
    result = cli("runs", "--sweep", tmp_path)
    assert result.exit_code == 2 and "no manifest.csv" in result.stderr


def test_missing_runs_dir(cli, tmp_path) -> None:
    result = cli("runs", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such runs directory" in result.stderr


def test_show(cli, runs_dir) -> None:
    run = sorted(runs_dir.glob("iris-mlp-20261120-10*"))[0]
    shown = _json(cli, "show", run)
    assert shown["status"] == "completed" and shown["name"] == "iris-mlp"
    assert shown["metrics"]["test"]["accuracy"] == 0.85
    assert shown["config"]["optimizer"] == "Adam(learning_rate=0.01)"
    assert shown["files"]["config.yaml"] == str(run / "config.yaml")
    text = cli("runs", "show", run)
    assert text.exit_code == 0 and "Adam(learning_rate=0.01)" in text.stdout
    assert cli("runs", "show", runs_dir / "iris-mlp-20261120-140000-dead").exit_code == 0
    assert cli("runs", "show", runs_dir / "plots").exit_code == 2


def test_compare_configs(cli, runs_dir) -> None:
    a, b, c = (next(runs_dir.glob(f"*-20261120-{hour}0000-*")) for hour in ("10", "11", "12"))
    data = _json(cli, "compare", a, b, c)
    diffs = data["config_differences"]
    assert "compile.optimizer.learning_rate" in diffs
    assert "training.epochs" not in diffs
    assert data["metrics"]["validation.loss"] == [
        json.loads((p / "metrics.json").read_text())["validation"]["loss"] for p in (a, b, c)]
    text = cli("runs", "compare", a, b)
    assert text.exit_code == 0 and "compile.optimizer.learning_rate" in text.stdout
    assert cli("runs", "compare", a).exit_code == 2


def test_compare_says_unreadable_for_a_damaged_run(cli, runs_dir) -> None:
    good = next(runs_dir.glob("*-20261120-100000-*"))
    broken = runs_dir / "iris-mlp-20261120-140000-dead"  # run.json cut short
    (broken / "config.yaml").write_text("name: iris-mlp\nseed: 1\n")
    data = _json(cli, "compare", good, broken)
    assert data["status"] == ["completed", "unreadable"]
    assert "run.json" in data["problems"][1][0] and data["problems"][0] == []
    assert data["config_differences"]["seed"] == [0, 1]
    text = cli("runs", "compare", good, broken)
    assert text.exit_code == 0, text.output
    assert f"2: {broken}  unreadable (" in text.stdout.replace("\n", "")
    (broken / "config.yaml").unlink()  # no config either: still shown, its keys None
    data = _json(cli, "compare", good, broken)
    assert data["status"][1] == "unreadable" and len(data["problems"][1]) == 2


def test_helpers() -> None:
    assert metric_key("val_loss") == ("validation", "loss")
    assert metric_key("test.accuracy") == ("test", "accuracy")
    assert metric_key("mae") == ("validation", "mae")
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": []}) == {"a.b.0": 1, "a.b.1.c": 2,
                                                              "d": []}
    assert overrides_of({"command": ["fit", "--set=training.epochs=5", "--set", "a.b=x"]}) \
        == {"training.epochs": 5, "a.b": "x"}
    assert overrides_of({"overrides": {"k": 1}, "command": ["--set", "a=2"]}) == {"k": 1}
    # exponent numbers are numbers here too, as `--set` reads them
    assert overrides_of({"command": ["fit", "--set", "lr=1e-3"]}) == {"lr": 0.001}


def test_two_hundred_runs_listed_without_tensorflow(tmp_path) -> None:
    runs = tmp_path / "runs"
    for i in range(200):
        make_run(runs, f"sweep-{i % 7}", f"20261120-{i // 60:02d}{i % 60:02d}00",
                 lr=0.001 * (i + 1), val_loss=1.0 / (i + 1))
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from kerastrain.cli import app\n"
            f"r = CliRunner().invoke(app, ['runs', {str(runs)!r}, '--json'])\n"
            "import json\n"
            "print(len(json.loads(r.stdout)['runs']), 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.split() == ["200", "False"]


def test_piped_runs_are_whole_rows_whatever_the_columns(tmp_path: Path) -> None:
    """To a pipe (`kerastrain runs | grep ...`), each run's name, status and first metric
    share one line, whole, even where COLUMNS says 80."""
    runs = tmp_path / "runs"
    make_run(runs, "iris-mlp-long-experiment", "20261120-100000", lr=0.01, val_loss=0.0118923,
             accuracy=0.90, test={"sparse_top_k_categorical_accuracy": 0.99})
    make_run(runs, "digits-mlp", "20261120-130000", status="interrupted", lr=1.0,
             val_loss=9.0)
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "kerastrain", "runs", "runs"], env=env,
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    lines = done.stdout.splitlines()
    for path in runs.iterdir():
        line = next(line for line in lines if path.name in line)
        assert "loss=" in line, done.stdout
    assert any("loss=0.01189" in line and "sparse_top_k_categorical_accuracy=0.99" in line
               for line in lines), done.stdout


@pytest.mark.parametrize(("validation", "shown"), [
    ({"scheme": "holdout", "validation_split": 0.2, "test_split": 0.1, "n_splits": None,
      "n_repeats": None, "refit": True},
     "scheme=holdout, validation_split=0.2, test_split=0.1"),
    ({"scheme": "kfold", "validation_split": 0.2, "test_split": 0.0, "n_splits": 5,
      "n_repeats": None, "refit": False},
     "scheme=kfold, validation_split=0.2, test_split=0.0, n_splits=5, refit=False")])
def test_show_lists_only_the_validation_keys_of_the_scheme(cli, tmp_path, validation,
                                                          shown) -> None:
    """A hold-out run has nothing to refit: `runs show` does not list refit=True."""
    run = make_run(tmp_path / "runs", "iris", "20261120-100000")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["validation"] = validation
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert _json(cli, "show", run)["config"]["validation"] == shown


def test_a_file_given_as_the_runs_directory_is_called_a_file(cli, runs_dir) -> None:
    stray = runs_dir / "notes.txt"
    for args in (("runs", stray), ("runs", "show", stray)):
        result = cli(*args)
        assert result.exit_code == 2
        assert f"{stray}: is a file, not a run" in result.stderr
        assert "no such" not in result.stderr

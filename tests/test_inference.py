"""`evaluate` and `predict` on a run directory: only completed runs, overrides of the run's
config limited to what cannot change the model, and models loaded in Keras's safe mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import Cli
from test_broken_inputs import IRIS_FEATURES, refused


def copy_run(iris_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / iris_run.name
    shutil.copytree(iris_run, copy)
    return copy


def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(",".join(f'"{f}"' for f in IRIS_FEATURES) + "\n5.1,3.5,1.4,0.2\n"
                    "6.7,3.0,5.2,2.3\n")
    return path


def with_lambda_model(run: Path) -> None:
    """The run's model.keras replaced by one holding a Lambda layer (Python bytecode)."""
    from kerastrain import _keras

    keras = _keras.keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 1.0),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(run / "model.keras")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_model_holding_code_is_refused_unless_unsafe(cli: Cli, iris_run: Path,
                                                       tmp_path: Path, command: str) -> None:
    run = copy_run(iris_run, tmp_path)
    with_lambda_model(run)
    out = tmp_path / "predictions.csv"
    args = [run] if command == "evaluate" else [run, rows_file(tmp_path), "-o", out]
    refused(cli(command, *args), f"{run / 'model.keras'}: refused to load the model: it holds "
            "Python code (a Lambda layer's function", "Pass --unsafe to load it anyway.")
    assert not out.exists()
    result = cli(command, *args, "--unsafe")
    assert result.exit_code == 0, result.output
    assert command == "evaluate" or out.exists()


@pytest.mark.parametrize("status, message", [
    ("running", "the run is still running (started"),
    ("failed", "the run is failed (ValueError: boom): its model is not final. Continue it "
               "with kerastrain resume"),
    ("interrupted", "the run is interrupted: its model is not final"),
])
def test_only_completed_runs_are_used(cli: Cli, iris_run: Path, tmp_path: Path, status: str,
                                      message: str) -> None:
    run = copy_run(iris_run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    info.update(status=status, error="ValueError: boom")
    (run / "run.json").write_text(json.dumps(info))
    refused(cli("evaluate", run), f"{run}: {message}")
    refused(cli("predict", run, rows_file(tmp_path), "-o", tmp_path / "p.csv"), message)


def test_evaluate_and_predict_take_a_batch_size_override(
        cli: Cli, iris_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The override reaches Keras's calls (the run was trained with batches of 16), and
    changes no score and no prediction."""
    from kerastrain import _keras
    from kerastrain.models import model as model_module

    model_class = _keras.keras().Model
    calls: list[tuple[str, int]] = []
    scoring, predict = model_module.scoring_input, model_class.predict

    def scoring_input(x, y, batch_size: int, *args, **kwargs):
        calls.append(("evaluate", batch_size))
        return scoring(x, y, batch_size, *args, **kwargs)

    def predicting(self, x, *args, batch_size=None, **kwargs):
        calls.append(("predict", batch_size))
        return predict(self, x, *args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(model_module, "scoring_input", scoring_input)
    monkeypatch.setattr(model_class, "predict", predicting)
    scores = {}
    for size in ("16", "7"):
        result = cli("evaluate", iris_run, "--set", f"training.batch_size={size}", "--json")
        assert result.exit_code == 0, result.output
        scores[size] = json.loads(result.stdout)["metrics"]
    written = {}
    for size in ("16", "1"):
        out = tmp_path / f"p{size}.csv"
        result = cli("predict", iris_run, rows_file(tmp_path), "-o", out, "--set",
                     f"training.batch_size={size}")
        assert result.exit_code == 0, result.output
        written[size] = out.read_text()
    assert calls == [("evaluate", 16), ("evaluate", 7), ("predict", 16), ("predict", 1)]
    assert scores["7"] == pytest.approx(scores["16"], rel=1e-5)
    assert written["1"] == written["16"]


@pytest.mark.parametrize("override, message", [
    ("compile.loss=mse", "--set compile.loss=mse: a finished run's config takes overrides "
                         "only of training.batch_size"),
    ("data.source.name=wine", "data.source.name says what the model is or what it was "
                              "trained on"),
    ("training.batch_size=abc", "--set training.batch_size=abc  training.batch_size:"),
    ("training.batch_size=0", "--set training.batch_size=0  training.batch_size:"),
])
def test_other_overrides_are_refused(cli: Cli, iris_run: Path, tmp_path: Path, override: str,
                                     message: str) -> None:
    refused(cli("evaluate", iris_run, "--set", override), message)
    out = tmp_path / "p.csv"
    refused(cli("predict", iris_run, rows_file(tmp_path), "-o", out, "--set", override),
            message)
    assert not out.exists()


def test_evaluate_takes_a_bundled_sets_integer_codes(cli: Cli, iris_run: Path,
                                                     tmp_path: Path) -> None:
    """A run on scikit-learn's iris holds its labels as names (setosa, ...); the same rows
    exported with their integer targets (load_iris(as_frame=True)) score the same."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    header = ",".join(f'"{f}"' for f in IRIS_FEATURES) + ",target\n"
    lines = [",".join(map(str, x)) for x in bunch.data]
    named, coded = tmp_path / "named.csv", tmp_path / "coded.csv"
    named.write_text(header + "".join(f"{x},{bunch.target_names[y]}\n"
                                      for x, y in zip(lines, bunch.target, strict=True)))
    coded.write_text(header + "".join(f"{x},{y}\n"
                                      for x, y in zip(lines, bunch.target, strict=True)))
    by_name, by_code = (cli("evaluate", iris_run, "--data", f, "--json") for f in (named, coded))
    assert by_code.exit_code == 0, by_code.output
    assert json.loads(by_code.stdout)["metrics"] == json.loads(by_name.stdout)["metrics"]
    coded.write_text(header + f"{lines[0]},3\n")  # no fourth class
    refused(cli("evaluate", iris_run, "--data", coded),
            "the label 3 in the evaluated rows is not among the classes",
            "Write each label as one of these classes, or as scikit-learn's integer codes: "
            "0 = setosa, 1 = versicolor, 2 = virginica.")


def test_evaluate_refuses_a_source_that_changed(cli: Cli, tmp_path: Path) -> None:
    """Without --data, evaluate scores the run's own test rows: only while its data file
    holds the rows it was trained on (same count, same values)."""
    from sklearn.datasets import load_iris

    from conftest import iris_config, write_config

    iris = load_iris(as_frame=True).frame
    data = tmp_path / "iris.csv"
    iris.to_csv(data, index=False)
    config = iris_config(tmp_path / "runs")
    config["data"] = {"source": {"type": "csv", "path": str(data)}, "target": "target"}
    config["training"]["epochs"] = 1
    config["output"]["plots"] = False
    result = cli("fit", write_config(tmp_path / "c.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    assert cli("evaluate", run).exit_code == 0

    changed = iris.copy()
    changed.iloc[3, 1] += 0.1
    changed.to_csv(data, index=False)
    refused(cli("evaluate", run), f"{data} changed since the run was trained")
    iris.iloc[:-1].to_csv(data, index=False)
    refused(cli("evaluate", run), f"{data} now has 149 rows; the run was trained on 150")

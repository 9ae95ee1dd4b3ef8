"""Each command end to end through the CLI, its outputs, and its exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_iris

from conftest import REPO, heavy_modules_after, iris_config, write_config
from kerastrain.training import schemes

SPEC_FILES = ("config.yaml", "run.json", "history.csv", "metrics.json", "model.keras",
              "preprocessing.json", "summary.txt", "splits.json")


def iris_csv(path: Path, rows: np.ndarray, with_target: bool = True) -> Path:
    """Rows of scikit-learn's iris, with the column names the sklearn source uses."""
    iris = load_iris()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(iris.feature_names) + (["target"] if with_target else []))
        for i in rows:
            label = [iris.target_names[iris.target[i]]] if with_target else []
            writer.writerow([*iris.data[i].tolist(), *label])
    return path


def test_help_imports_no_tensorflow() -> None:
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom kerastrain.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\n"
            "print(r.exit_code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False", "False"]


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "kerastrain", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0
    assert "fit" in out.stdout and "predict" in out.stdout


def test_fit_writes_the_run_directory(iris_run: Path) -> None:
    for name in SPEC_FILES:
        assert (iris_run / name).exists(), name
    info = json.loads((iris_run / "run.json").read_text())
    assert info["status"] == "completed"
    assert info["seed"] == 0 and info["versions"]["keras"].startswith("3")
    assert (iris_run / "checkpoints" / "best.keras").exists()
    assert (iris_run / "plots" / "learning_curves.png").exists()
    history = (iris_run / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    assert len(history) == 16  # 15 epochs
    metrics = json.loads((iris_run / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    assert metrics["validation"]["accuracy"] >= 0.8
    assert "Final metrics" in (iris_run / "summary.txt").read_text()


def test_resolved_config_reproduces_the_run(cli, iris_run: Path, tmp_path: Path) -> None:
    result = cli("fit", iris_run / "config.yaml", "--json",
                 "--set", f"output.runs_dir={tmp_path}")
    assert result.exit_code == 0, result.output
    again = Path(json.loads(result.stdout)["run_dir"])
    assert again != iris_run
    first = json.loads((iris_run / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    assert second["test"]["accuracy"] == pytest.approx(first["test"]["accuracy"])
    assert second["validation"]["loss"] == pytest.approx(first["validation"]["loss"], rel=1e-4)


def test_quiet_prints_only_the_run_directory(cli, iris_yaml: Path) -> None:
    result = cli("fit", iris_yaml, "--quiet", "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and Path(lines[0]).is_dir()
    # no progress; warnings (iris has a duplicated row that leaks into the test split) stay
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())


def test_evaluate_scores_the_test_split(cli, iris_run: Path) -> None:
    result = cli("evaluate", iris_run, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["split"] == "test" and data["rows"] == 30
    saved = json.loads((iris_run / "metrics.json").read_text())["test"]
    assert data["metrics"]["accuracy"] == pytest.approx(saved["accuracy"])


def test_predict_agrees_with_evaluate(cli, iris_run: Path, tmp_path: Path) -> None:
    test_rows = np.array(json.loads((iris_run / "splits.json").read_text())["test"])
    rows_csv = iris_csv(tmp_path / "test_rows.csv", test_rows)
    scored = cli("evaluate", iris_run, "--data", rows_csv, "--json")
    assert scored.exit_code == 0, scored.output
    accuracy = json.loads(scored.stdout)["metrics"]["accuracy"]
    raw = iris_csv(tmp_path / "raw.csv", test_rows, with_target=False)
    out = tmp_path / "preds.csv"
    result = cli("predict", iris_run, raw, "--output", out)
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert list(predicted[0]) == ["target", "prob_setosa", "prob_versicolor", "prob_virginica"]
    iris = load_iris()
    truth = iris.target_names[iris.target[test_rows]]
    hits = np.mean([p["target"] == t for p, t in zip(predicted, truth, strict=True)])
    assert hits == pytest.approx(accuracy)
    assert float(predicted[0]["prob_setosa"]) + float(predicted[0]["prob_versicolor"]) + \
        float(predicted[0]["prob_virginica"]) == pytest.approx(1.0, abs=1e-5)


def test_predict_missing_column_writes_nothing(cli, iris_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal length (cm),sepal width (cm)\n5.1,3.5\n")
    out = tmp_path / "preds.csv"
    result = cli("predict", iris_run, bad, "--output", out)
    assert result.exit_code == 2
    assert "'petal length (cm)'" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary file left behind either


def test_predict_never_overwrites_without_asking(cli, iris_run: Path, tmp_path: Path) -> None:
    raw = iris_csv(tmp_path / "raw.csv", np.arange(5), with_target=False)
    out = tmp_path / "preds.csv"
    out.write_text("precious\n")
    result = cli("predict", iris_run, raw, "--output", out)
    assert result.exit_code == 2 and "exists" in result.stderr
    assert out.read_text() == "precious\n"
    assert cli("predict", iris_run, raw, "--output", out, "--overwrite").exit_code == 0
    assert out.read_text().startswith("target,")


def test_predict_to_npz(cli, iris_run: Path, tmp_path: Path) -> None:
    raw = iris_csv(tmp_path / "raw.csv", np.arange(5), with_target=False)
    result = cli("predict", iris_run, raw, "--output", tmp_path / "p.npz", "--json")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "p.npz") as data:
        assert data["prob_setosa"].shape == (5,)


def test_evaluate_rejects_a_missing_run(cli, tmp_path: Path) -> None:
    result = cli("evaluate", tmp_path / "nope")
    assert result.exit_code == 2 and "no such run directory" in result.stderr


def test_regression_predicts_values(cli, tmp_path: Path) -> None:
    config = iris_config(tmp_path / "runs", name="diabetes")
    config["data"] = {"source": {"type": "sklearn", "name": "diabetes"}, "task": "regression"}
    config["model"] = {"layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                                  {"type": "Dense", "units": 1}]}
    config["compile"] = {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]}
    config["training"] = {"epochs": 2}
    result = cli("fit", write_config(tmp_path / "d.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["target"]["task"] == "regression"
    assert pre["target"]["scale"]["mean"] > 100   # learned at unit scale, output in its units
    names = [f["name"] for f in pre["features"]]
    diabetes = load_diabetes()
    assert names == diabetes.feature_names
    raw = tmp_path / "raw.csv"
    np.savetxt(raw, diabetes.data[:30], delimiter=",", header=",".join(names), comments="")
    result = cli("predict", run, raw, "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    header, *values = (tmp_path / "p.csv").read_text().splitlines()
    assert header == "target" and len(values) == 30
    predicted = np.array([float(v) for v in values])
    # evaluate scores the values predict wrote: against the true targets, and against
    # targets 0.5 off each prediction (where an error of 1e-4 in a value would show)
    near = predicted + np.where(np.arange(30) % 2, 0.5, -0.5)
    for targets in (diabetes.target[:30], near):
        labelled = tmp_path / "labelled.csv"
        np.savetxt(labelled, np.column_stack([diabetes.data[:30], targets]), delimiter=",",
                   header=",".join([*names, "target"]), comments="")
        result = cli("evaluate", run, "--data", labelled, "--json")
        assert result.exit_code == 0, result.output
        scores = json.loads(result.stdout)["metrics"]
        errors = predicted - targets
        assert scores["mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-4)
        assert scores["loss"] == pytest.approx(np.mean(errors ** 2), rel=1e-4)


def test_csv_source_with_categorical_column(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["size,color,label"]
    for _ in range(80):
        color = rng.choice(["red", "blue"])
        rows.append(f"{rng.normal():.3f},{color},{'warm' if color == 'red' else 'cold'}")
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    config = iris_config(tmp_path / "runs", name="colors")
    config["data"] = {"source": {"type": "csv", "path": "rows.csv"}, "target": "label"}
    config["model"] = {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]}
    config["training"] = {"epochs": 2}
    result = cli("fit", write_config(tmp_path / "c.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["features"][1]["categories"] == ["blue", "red"]
    assert pre["features"][1]["kind"] == "binary"
    assert pre["input_shape"] == [2]   # size, and color as one 0/1 column
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["data"]["source"]["path"] == str(tmp_path / "rows.csv")


def test_data_error_in_csv_exits_2_and_creates_no_run(cli, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("x,y\n" + "".join(
        f"{'abc' if i % 3 == 1 else i},{'ab'[i % 2]}\n" for i in range(12)))
    config = iris_config(tmp_path / "runs")
    config["data"] = {"source": {"type": "csv", "path": "rows.csv"}, "target": "y"}
    config["model"] = {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]}
    result = cli("fit", write_config(tmp_path / "c.yaml", config))
    assert result.exit_code == 2
    assert "column 'x' is numeric but row " in result.stderr and "holds 'abc'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_interrupted_fit_is_recorded(cli, iris_yaml: Path, monkeypatch) -> None:
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(schemes, "train_fold", interrupt)
    result = cli("fit", iris_yaml)
    assert result.exit_code == 130
    run = next((iris_yaml.parent / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


def test_internal_error_exits_1_with_a_trace(cli, iris_yaml: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(schemes, "train_fold", broken)
    result = cli("fit", iris_yaml)
    assert result.exit_code == 1
    assert "internal error" in result.stderr and "RuntimeError: boom" in result.stderr
    run = next((iris_yaml.parent / "runs").iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["error"] == "RuntimeError: boom"


def test_list_shows_every_keras_layer(cli) -> None:
    import inspect

    import keras

    result = cli("list", "layers")
    assert result.exit_code == 0
    listed = set(result.stdout.split())
    from kerastrain.registry import _NOT_FOR_CONFIGS

    public = {n for n, o in vars(keras.layers).items()
              if inspect.isclass(o) and issubclass(o, keras.layers.Layer) and n != "Layer"}
    assert public - _NOT_FOR_CONFIGS["layers"] <= listed
    assert not listed & _NOT_FOR_CONFIGS["layers"]


def test_validate_json(cli, iris_yaml: Path) -> None:
    result = cli("validate", iris_yaml, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["valid"] and data["classes"] == ["setosa", "versicolor", "virginica"]
    assert data["train_rows"] + data["validation_rows"] + data["test_rows"] == 150
    assert not (iris_yaml.parent / "runs").exists()


def test_json_errors_are_one_json_object(cli, tmp_path: Path) -> None:
    result = cli("fit", tmp_path / "missing.yaml", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["status"] == "error" and data["exit_code"] == 2
    assert "no such config file" in data["error"]


def test_class_weight_by_label_must_name_a_class(cli, iris_yaml: Path) -> None:
    result = cli("validate", iris_yaml, "--set", "training.class_weight={setosa: 2, rose: 1}")
    assert result.exit_code == 2
    assert "training.class_weight.rose: 'rose' is not a class" in result.stderr
    assert cli("validate", iris_yaml, "--set", "training.class_weight=balanced").exit_code == 0


def test_runs_lists_runs_without_tensorflow(iris_run: Path) -> None:
    code = ("import sys, json\nfrom typer.testing import CliRunner\n"
            "from kerastrain.cli import app\n"
            f"r = CliRunner().invoke(app, ['runs', {str(iris_run.parent)!r}, '--json'])\n"
            "print(json.dumps([r.exit_code, 'tensorflow' in sys.modules, json.loads(r.stdout)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, imported, data = json.loads(out.stdout)
    assert exit_code == 0 and imported is False
    assert data["runs"][0]["run_dir"] == str(iris_run)
    assert data["runs"][0]["status"] == "completed"


def test_mirrored_strategy_on_one_host(cli, iris_yaml: Path) -> None:
    result = cli("fit", iris_yaml, "--json", "--set", "runtime.strategy=mirrored",
                 "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    assert json.loads((run / "run.json").read_text())["strategy"] == "MirroredStrategy"


def test_multi_worker_without_cluster_is_a_config_error(cli, iris_yaml: Path) -> None:
    result = cli("validate", iris_yaml, "--set", "runtime.strategy=multi_worker_mirrored")
    assert result.exit_code == 2
    assert "multi_worker_mirrored needs TF_CONFIG" in result.stderr


def test_list_takes_every_kind_the_registry_has(cli) -> None:
    from kerastrain.registry import KINDS

    for kind in KINDS:
        assert cli("list", kind).exit_code == 0, kind
    listed = cli("list", "schedules").stdout.split()
    assert {"ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay"} <= set(listed)


def test_skipped_outputs_are_said_and_tensorflow_logs_stay_quiet(tmp_path: Path) -> None:
    """One tiny fit in a fresh process without matplotlib, under op determinism and
    mixed_float16: the terminal says the plots were skipped (and why), no empty plots/
    is left, and no TensorFlow C++ log line reaches stderr."""
    config = write_config(tmp_path / "c.yaml", iris_config(
        tmp_path / "runs", training={"epochs": 1, "batch_size": 32},
        runtime={"deterministic": True, "dtype_policy": "mixed_float16"}))
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from kerastrain.cli import app\n"
            f"app(['fit', {str(config)!r}], prog_name='kerastrain')")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "note: plots skipped: matplotlib is not installed" in done.stderr
    assert ".cc:" not in done.stderr and "E0000" not in done.stderr, done.stderr
    run = next((tmp_path / "runs").iterdir())
    assert not (run / "plots").exists()


@pytest.mark.parametrize(("args", "order"), [
    ((), ["init", "validate", "fit", "resume", "evaluate", "predict", "export", "serve",
          "sweep", "runs", "compare", "list", "schema"]),
    (("runs",), ["list", "show", "compare", "export"])])
def test_help_lists_whole_summaries_in_workflow_order(runner, args, order) -> None:
    """At 80 columns each command is one line, in the order of the work, its summary the
    whole first sentence of its help (never cut with '...')."""
    from kerastrain.cli import app

    result = runner.invoke(app, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0
    section = result.stdout.split("Commands:\n")[1]
    lines = [line for line in section.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == order, section  # no continuation lines
    assert "..." not in section
    for line in lines:
        assert line.rstrip().endswith("."), line


def test_usage_lines_share_one_style(runner) -> None:
    """Every argument is an upper-case name, `{NAME}` when required, `[NAME]` when not,
    and a list of paths shows as paths."""
    import re

    from kerastrain.cli import app

    for command in (["fit"], ["resume"], ["validate"], ["evaluate"], ["predict"], ["sweep"],
                    ["list"], ["compare"], ["runs", "list"], ["runs", "show"],
                    ["runs", "compare"]):
        text = runner.invoke(app, [*command, "--help"]).stdout
        usage = text.splitlines()[0]
        arguments = usage.split("[OPTIONS]")[1].split()
        assert arguments and all(re.fullmatch(r"(\{[A-Z_]+\}|\[[A-Z_]+\])(\.\.\.)?", a)
                                 for a in arguments), usage
        assert "list[" not in text, text


def test_a_wrong_choice_reads_as_a_sentence(runner) -> None:
    from kerastrain.cli import app

    result = runner.invoke(app, ["list", "foo"])
    assert result.exit_code == 2
    assert "Value error" not in result.stderr
    assert "'foo' is not one of 'layers'" in result.stderr


def test_tensorboard_auto_without_the_package_is_no_warning(cli, tmp_path, monkeypatch) -> None:
    """`tensorboard: auto` (the default) with no tensorboard package: no logs, nothing said
    on the terminal, run.json says why; `tensorboard: true` is exit 2 before training."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # find_spec: not installed
    config = iris_config(tmp_path / "runs", training={"epochs": 1, "batch_size": 32})
    result = cli("fit", write_config(tmp_path / "auto.yaml", config))
    assert result.exit_code == 0, result.output
    assert "TensorBoard" not in result.stderr and "tensorboard" not in result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    info = json.loads((run / "run.json").read_text())
    assert info["tensorboard"].startswith("off: the tensorboard package is not installed")
    assert not any("TensorBoard" in w for w in info["warnings"])
    assert not (run / "logs").exists()
    config["output"] = {"runs_dir": str(tmp_path / "more"), "tensorboard": True}
    result = cli("fit", write_config(tmp_path / "true.yaml", config))
    assert result.exit_code == 2
    assert "output.tensorboard" in result.stderr and "pip install" in result.stderr
    assert not (tmp_path / "more").exists() or not any((tmp_path / "more").iterdir())


def test_quiet_prints_the_run_directory_when_interrupted_and_resume_alike(
        cli, iris_yaml: Path, monkeypatch) -> None:
    """`--quiet` prints the run directory on stdout even when the fit is interrupted, and
    `resume RUN` given a relative path prints it as fit does: absolute."""
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(schemes, "train_fold", interrupt)
        result = cli("fit", iris_yaml, "--quiet")
    assert result.exit_code == 130
    (run,) = (iris_yaml.parent / "runs").iterdir()
    assert result.stdout == f"{run}\n" and run.is_absolute()
    monkeypatch.chdir(run.parent)
    result = cli("resume", run.name, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{run}\n"


def test_quiet_kfold_notes_nothing_about_a_table_it_did_not_show(tmp_path, capsys) -> None:
    from kerastrain.cli.train import _render_trained
    from kerastrain.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.info_file.write_text(json.dumps({"status": "completed"}))
    run.cv_summary.write_text(json.dumps({
        "splitter": "KFold", "folds": ["0-0", "0-1"], "metrics": {"accuracy": {
            "per_fold": {"0-0": 1.0, "0-1": 0.98}, "mean": 0.99, "std": 0.01,
            "ci95": [0.9, 1.0], "ci95_clipped": True}}}))
    metrics = {"validation": {"accuracy": 0.99}}
    _render_trained(run, metrics, "iris", quiet=True, json_=False)
    quiet = capsys.readouterr()
    assert quiet.out == f"{run.path}\n" and "CI" not in quiet.err
    _render_trained(run, metrics, "iris", quiet=False, json_=False)
    assert "a 95% CI marked * is clipped" in capsys.readouterr().err  # with the table


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_missing_data_file_is_said_before_tensorflow_loads(cli, iris_run: Path, tmp_path,
                                                             command) -> None:
    missing = tmp_path / "nowhere.csv"
    args = [command, iris_run, "--data", missing] if command == "evaluate" else \
        [command, iris_run, missing, "--output", tmp_path / "out.csv"]
    code, heavy = heavy_modules_after(tmp_path, *args)
    assert code == 2 and "tensorflow" not in heavy and "keras" not in heavy
    result = cli(*args)
    assert result.exit_code == 2 and f"{missing}: no such data file." in result.stderr

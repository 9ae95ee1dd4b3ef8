"""`export`: the run's model with its preprocessing inside. A fresh Python that never
imports kerastrain loads the SavedModel the way TensorFlow Serving does (its
`serving_default` signature) and gives what `kerastrain predict` gives on the same raw CSV:
empty fields, markers, unseen categories, numbers that are not, later dates."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import test_tables
from conftest import REPO, Cli, iris_config, write_config
from test_tables import HEADER, messy_rows, write_csv

messy_run = test_tables.messy_run   # the trained messy-table run, a module fixture here too

# Loads exports as their consumer does, in one fresh Python for the module (TensorFlow's
# import paid once) with no kerastrain on the path: for each request (a line: the export's
# folder and a CSV), the CSV's rows as the signature's inputs (export.json says each
# input's column and dtype); the outputs back as a line of JSON.
CONSUMER = r"""
import csv, json, math, os, sys, traceback
import numpy as np
import tensorflow as tf
assert "kerastrain" not in sys.modules
def number(text):
    try:
        return float(text)
    except ValueError:
        return math.nan
def consume(folder, data):
    info = json.load(open(folder + "/export.json"))
    rows = list(csv.DictReader(open(data, newline="")))
    inputs = {}
    for spec in info["inputs"]:
        cells = [row[spec["column"]] for row in rows]
        inputs[spec["name"]] = (tf.constant([number(c) for c in cells], tf.float32)
                                if spec["dtype"] == "float32" else tf.constant(cells))
    fn = tf.saved_model.load(folder).signatures["serving_default"]
    out = fn(**inputs)
    assert "kerastrain" not in sys.modules
    return {k: [x.decode() if isinstance(x, bytes) else x for x in v.numpy().tolist()]
            for k, v in out.items()}
for line in sys.stdin:
    try:
        answer = {"out": consume(*json.loads(line))}
    except BaseException:
        answer = {"error": traceback.format_exc()}
    print(json.dumps(answer), flush=True)
os._exit(0)  # an interpreter that loaded TensorFlow can hang in its shutdown
"""


@pytest.fixture(scope="module")
def consume(tmp_path_factory):
    """`consume(folder, data)`: the export at `folder` run on the CSV `data` by the
    module's fresh Python (started at the first request)."""
    started: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}

    def ask(folder: Path, data: Path) -> dict:
        if started and started[0].poll() is not None:  # ended (a test stopped mid-request)
            started.clear()
        if not started:
            started.append(subprocess.Popen(
                [sys.executable, "-c", CONSUMER], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, env=env,
                cwd=tmp_path_factory.mktemp("consumer")))
        proc = started[0]
        proc.stdin.write(json.dumps([str(folder), str(data)]) + "\n")
        proc.stdin.flush()
        line = ""
        try:
            line = proc.stdout.readline()
        finally:  # an answer not read (the test's time ran out): no later test reads it
            if not line:
                proc.kill()
        assert line, f"the consumer ended: exit {proc.wait(timeout=60)}"
        answer = json.loads(line)
        assert "error" not in answer, answer.get("error", "")[-3000:]
        return answer["out"]

    yield ask
    for proc in started:
        proc.stdin.close()
        try:
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()


def predicted(cli: Cli, run: Path, data: Path, tmp: Path) -> list[dict]:
    result = cli("predict", run, data, "--output", tmp / "p.csv", "--overwrite", "--quiet")
    assert result.exit_code == 0, result.output
    with open(tmp / "p.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_same(exported: dict, rows: list[dict], target: str, classes: list[str]) -> None:
    assert exported["label"] == [r[target] for r in rows]
    expected = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in rows])
    np.testing.assert_allclose(np.array(exported["probabilities"]), expected, atol=1e-5)


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("iris_export")
    config = write_config(tmp / "iris.yaml", iris_config(tmp / "runs",
                                                         training={"epochs": 3,
                                                                   "batch_size": 16}))
    result = Cli()("fit", config, "--json")
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


def test_iris_saved_model_in_a_fresh_python_equals_predict(cli: Cli, consume, iris_run: Path,
                                                           tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target").head(40)
    frame = frame.astype(object)
    frame.iloc[0, 0] = ""                        # an empty field: a missing value
    frame.iloc[1, 2] = "NA"                      # a marker
    data = tmp_path / "flowers.csv"
    frame.to_csv(data, index=False)
    result = cli("export", iris_run, "--format", "saved_model", "--output",
                 tmp_path / "exp", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "exp" / "export.json").read_text())
    classes = info["outputs"]["probabilities"]["classes"]
    assert classes == ["setosa", "versicolor", "virginica"]
    assert [i["column"] for i in info["inputs"]][0] == "sepal length (cm)"
    assert "Label order" in (tmp_path / "exp" / "README.md").read_text()
    assert_same(consume(tmp_path / "exp", data), predicted(cli, iris_run, data, tmp_path),
                "target", classes)


def test_messy_table_saved_model_equals_predict(cli: Cli, consume, request, tmp_path: Path) -> None:
    run, _ = request.getfixturevalue("messy_run")
    rows = [r[:-1] for r in messy_rows(40, 2, year=2031, new=True)]
    rows[0][1:7] = ["", "", "", "", "", ""]                 # every feature empty
    rows[1][2] = "lots"                                    # not a number
    rows[2][4] = "03/15/2021"                              # a date in another form
    rows[3][4] = "2021-02-30"                              # no such day: missing
    rows[4][3] = " pro "                                   # spaces around a category
    data = write_csv(tmp_path / "new.csv", rows, HEADER[:-1])
    result = cli("export", run, "--format", "saved_model", "--output", tmp_path / "exp")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "exp" / "export.json").read_text())
    kinds = {i["column"]: (i["kind"], i["dtype"]) for i in info["inputs"]}
    assert kinds == {"age": ("numeric", "float32"), "income": ("numeric", "float32"),
                     "plan": ("categorical", "string"), "signup": ("date", "string"),
                     "note": ("text", "string"), "member": ("binary", "string")}
    classes = info["outputs"]["probabilities"]["classes"]
    assert_same(consume(tmp_path / "exp", data), predicted(cli, run, data, tmp_path),
                "churn", classes)


def test_keras_export_loads_in_safe_mode_and_equals_predict(cli: Cli, iris_run: Path,
                                                            tmp_path: Path) -> None:
    from kerastrain import _keras
    from kerastrain.export import register

    result = cli("export", iris_run, "--format", "keras", "--output", tmp_path / "k")
    assert result.exit_code == 0, result.output
    register()
    model = _keras.keras().saving.load_model(tmp_path / "k" / "model.keras", safe_mode=True)
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target").head(20)
    frame.to_csv(tmp_path / "x.csv", index=False)
    info = json.loads((tmp_path / "k" / "export.json").read_text())
    out = model({i["name"]: frame[i["column"]].to_numpy(np.float32) for i in info["inputs"]})
    rows = predicted(cli, iris_run, tmp_path / "x.csv", tmp_path)
    assert_same({"label": [v.decode() for v in np.asarray(out["label"])],
                 "probabilities": np.asarray(out["probabilities"])}, rows, "target",
                ["setosa", "versicolor", "virginica"])


def test_export_refuses_an_existing_folder_a_missing_fold_and_leaves_nothing(
        cli: Cli, iris_run: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = cli("export", iris_run, "--format", "keras", "--output", tmp_path / "taken")
    assert result.exit_code == 2 and "exists" in result.stderr and "--overwrite" in result.stderr
    result = cli("export", iris_run, "--format", "keras", "--output", tmp_path / "f",
                 "--fold", "1-9")
    assert result.exit_code == 2 and "no fold '1-9'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_onnx_of_numeric_columns_equals_predict(cli: Cli, iris_run: Path,
                                                tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target").head(20)
    frame.to_csv(tmp_path / "x.csv", index=False)
    result = cli("export", iris_run, "--format", "onnx", "--output", tmp_path / "o")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "o" / "export.json").read_text())
    session = ort.InferenceSession(str(tmp_path / "o" / "model.onnx"))
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {i["name"]: frame[i["column"]].to_numpy(np.float32)
                                             for i in info["inputs"]}), strict=True))
    rows = predicted(cli, iris_run, tmp_path / "x.csv", tmp_path)
    assert_same({"label": list(out["label"]), "probabilities": out["probabilities"]}, rows,
                "target", ["setosa", "versicolor", "virginica"])


def tflite_outputs(folder: Path, frame) -> dict:
    """The export's TFLite model run as a TFLite app runs it: the interpreter and its
    serving signature, one float32 array per raw column (export.json's names)."""
    from kerastrain import _keras

    info = json.loads((folder / "export.json").read_text())
    runner = _keras.tf().lite.Interpreter(str(folder / "model.tflite")).get_signature_runner()
    return runner(**{i["name"]: frame[i["column"]].to_numpy(np.float32, na_value=np.nan)
                     for i in info["inputs"]})


def test_tflite_of_numeric_columns_equals_predict(cli: Cli, iris_run: Path,
                                                  tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target").head(40)
    frame.iloc[0, 0] = np.nan                     # an empty field: a missing value
    frame.to_csv(tmp_path / "x.csv", index=False)
    result = cli("export", iris_run, "--format", "tflite", "--output", tmp_path / "t")
    assert result.exit_code == 0, result.output
    out = tflite_outputs(tmp_path / "t", frame)
    rows = predicted(cli, iris_run, tmp_path / "x.csv", tmp_path)
    assert_same({"label": [v.decode() for v in out["label"]],
                 "probabilities": out["probabilities"]}, rows, "target",
                ["setosa", "versicolor", "virginica"])


def test_tflite_and_onnx_name_the_ops_and_columns_that_block_them(cli: Cli, request,
                                                                  tmp_path: Path) -> None:
    run, _ = request.getfixturevalue("messy_run")
    result = cli("export", run, "--format", "tflite", "--output", tmp_path / "t")
    assert result.exit_code == 2
    assert "TFLite cannot convert this model: its built-in ops have no" in result.stderr
    assert "StringStrip" in result.stderr and "IsNan" in result.stderr
    assert ("the columns plan (categorical), signup (date), note (text), member (binary) "
            "are read with TensorFlow's string ops (dates computed in float64)"
            in " ".join(result.stderr.split()))
    if importlib.util.find_spec("tf2onnx"):
        result = cli("export", run, "--format", "onnx", "--output", tmp_path / "o")
        assert result.exit_code == 2 and "StringStrip" in result.stderr, result.output
    assert list(tmp_path.iterdir()) == []


def fit_config(tmp: Path, source: Path, **changes) -> Path:
    import yaml

    config = yaml.safe_load(source.read_text())
    config["training"]["epochs"] = 2
    config["output"] = {"runs_dir": str(tmp / "runs")}
    config.update(changes)
    path = write_config(tmp / source.name, config)
    result = Cli()("fit", path, "--json")
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


def test_a_two_input_wide_and_deep_model_keeps_its_output_name(cli: Cli, consume,
                                                               tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    run = fit_config(tmp_path, REPO / "configs" / "wide_deep_two_inputs.yaml")
    frame = load_diabetes(as_frame=True).frame.drop(columns="target").head(30).astype(object)
    frame.iloc[0, 2] = ""                         # bmi feeds both inputs: missing in both
    frame.to_csv(tmp_path / "x.csv", index=False)
    assert cli("export", run, "--format", "saved_model", "--output",
               tmp_path / "e").exit_code == 0
    exported = consume(tmp_path / "e", tmp_path / "x.csv")
    rows = predicted(cli, run, tmp_path / "x.csv", tmp_path)
    np.testing.assert_allclose(np.array(exported["output"])[:, 0],
                               [float(r["output"]) for r in rows], rtol=1e-5, atol=1e-5)
    from kerastrain.export.load import load_raw_model
    from kerastrain.serving.app import Predictor

    served = Predictor(load_raw_model(run)).predict(frame.to_dict("records"))
    np.testing.assert_allclose([p["output"] for p in served],
                               [float(r["output"]) for r in rows], rtol=1e-5, atol=1e-5)
    result = cli("export", run, "--format", "tflite", "--output", tmp_path / "t")
    assert result.exit_code == 0, result.output
    lite = tflite_outputs(tmp_path / "t", frame.replace("", np.nan).astype(float))
    np.testing.assert_allclose(lite["output"][:, 0], [float(r["output"]) for r in rows],
                               rtol=1e-5, atol=1e-5)


def test_several_inputs_and_outputs_keep_their_names(tmp_path: Path) -> None:
    from kerastrain.data.sources import load_source
    from kerastrain.inference import graph_prediction_columns, load_run

    run = fit_config(tmp_path, REPO / "configs" / "ticket_classifier.yaml")
    assert Cli()("export", run, "--format", "saved_model", "--output",
                 tmp_path / "e").exit_code == 0
    loaded = load_run(run)
    table = load_source(loaded.loaded.config.data.source, 42)
    rows = np.arange(50)
    expected = graph_prediction_columns(loaded.pre, loaded.model.predict(
        loaded.pre.transform_x(table, rows), verbose=0))
    from kerastrain import _keras

    fn = _keras.tf().saved_model.load(str(tmp_path / "e")).signatures["serving_default"]
    out = fn(**{name: table.columns[name][rows].astype(np.float32)
                for name in ("title", "text_body", "tags")})
    assert sorted(out) == ["department_label", "department_probabilities", "priority"]
    np.testing.assert_allclose(out["priority"].numpy()[:, 0], expected["priority"], atol=1e-5)
    assert out["department_label"].numpy().tolist() == list(expected["department"])
    for j in range(4):
        np.testing.assert_allclose(out["department_probabilities"].numpy()[:, j],
                                   expected[f"department_prob_{j}"], atol=1e-5)


def test_a_cross_validation_run_exports_its_refit_model_or_a_folds(cli: Cli, consume,
                                                                  tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    config = write_config(tmp_path / "cv.yaml", iris_config(
        tmp_path / "runs", training={"epochs": 2, "batch_size": 16},
        validation={"scheme": "kfold", "n_splits": 2, "test_split": 0.2, "refit": True},
        runtime={"workers": 1}))
    result = cli("fit", config, "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    fold = sorted(p.name for p in (run / "folds").iterdir())[1]
    load_iris(as_frame=True).frame.drop(columns="target").head(20).to_csv(
        tmp_path / "x.csv", index=False)
    refit = tmp_path / "refit"
    assert cli("export", run, "--format", "saved_model", "--output", refit).exit_code == 0
    result = cli("export", run, "--format", "saved_model", "--output", tmp_path / "fold",
                 "--fold", fold)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "fold" / "export.json").read_text())["fold"] == fold
    rows = predicted(cli, run, tmp_path / "x.csv", tmp_path)   # predict uses the refit model
    assert_same(consume(refit, tmp_path / "x.csv"), rows, "target",
                ["setosa", "versicolor", "virginica"])
    of_fold = consume(tmp_path / "fold", tmp_path / "x.csv")["probabilities"]
    assert not np.allclose(of_fold, [[float(r[f"prob_{c}"]) for c in
                                      ("setosa", "versicolor", "virginica")] for r in rows])


def test_dates_are_read_in_the_graph_as_predict_reads_them() -> None:
    from kerastrain.data.kinds import as_days
    from kerastrain.export.graph import classes

    texts = ["2020-01-05", "2020-1-5", "2020-01-05 10:30", "2020-01-05T10:30:15.5",
             "2020-01-05T10", "05/17/2024", "5/7/2024 8:30", "5/7/2024 8:30:20", "2024/5/17",
             "17.05.2024", "2021-02-30", "2024-02-29", "", "soon", "1969-12-31",
             "2020-01-05T25:00",
             # month names (strptime's %b and %B, any case), ISO months and years, offsets
             "Mar 5, 2024", "mar 05, 2024", "MAR 5,  2024", "5 Mar 2024", "05 mar 2024",
             "5 March 2024", "March 5, 2024", "SEPTEMBER 30, 2023", "31 Feb 2024",
             "29 feb 2024", "Sept 5, 2024", "Mar 5 2024", "Mar 5,2024", "5 Mar 24",
             "5-Mar-2024", "5 Foo 2024", "0 Mar 2024", "5 Mar 2024 10:30", "2024-05", "2024",
             "2024-13", "2024-5", "2024-05-17T08:30+01:00", "2024-05-17T08:30-0530",
             "2024-05-17 08:30:00.5Z", "2024-05-17T08+02", "2024-05-17Z", "2024-05-17t08:30",
             "2024-05-17T08:30+25:00", "2024-05-17T08:30+01:75", "2024-05-17T23:59:59-12",
             # NumPy reads these too, but `predict` does not: no dates
             "today", "now", "NaT", "20240517", "-2024-05-17"]
    got = np.asarray(classes()["ParseDays"]()(np.array(texts, dtype=object)))
    with warnings.catch_warnings():   # NumPy's on offsets to UTC
        warnings.simplefilter("ignore")
        want = [as_days(np.array([t], dtype=object), frozenset([""]))[0][0] for t in texts]
    assert [t for t, g, w in zip(texts, got, want, strict=True)
            if not (g == w or np.isnan(g) and np.isnan(w))] == []
    read = dict(zip(texts, got, strict=True))
    assert read["5 March 2024"] == read["Mar 5, 2024"] == 19787.0       # 2024-03-05
    assert np.isnan([read["today"], read["NaT"], read["20240517"], read["Sept 5, 2024"]]).all()
    assert read["2024-05-17T08:30+01:00"] == 19860 + 7.5 / 24


def test_the_raw_penguins_table_saved_model_equals_predict(cli: Cli, consume,
                                                           tmp_path: Path) -> None:
    resources = pytest.importorskip("importlib.resources")
    pytest.importorskip("palmerpenguins")
    run = fit_config(tmp_path, REPO / "configs" / "penguins.yaml", callbacks=[])
    source = resources.files("palmerpenguins") / "data" / "penguins-raw.csv"
    data = tmp_path / "penguins.csv"
    data.write_text(source.read_text())
    assert cli("export", run, "--format", "saved_model", "--output",
               tmp_path / "e").exit_code == 0
    info = json.loads((tmp_path / "e" / "export.json").read_text())
    assert {i["kind"] for i in info["inputs"]} >= {"numeric", "categorical", "date"}
    assert_same(consume(tmp_path / "e", data), predicted(cli, run, data, tmp_path),
                "Species", info["outputs"]["probabilities"]["classes"])

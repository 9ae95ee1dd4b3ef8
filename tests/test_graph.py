"""Graph models (the functional API): the builder against hand-built Keras models, the
per-output losses Keras logs, the checks before training, and the CLI end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from kerastrain.cli import app
from kerastrain.config import load_config
from kerastrain.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TEST_CONFIGS = Path(__file__).resolve().parent / "configs"


def _model_for(config: Path, *overrides: str):
    """The compiled model `fit` would train for `config`, built from its real data."""
    from kerastrain.experiment import load_experiment
    from kerastrain.models.model import build_model

    loaded = load_config(config, list(overrides))
    experiment = load_experiment(loaded)
    pre = experiment.preprocessor(experiment.plan.folds[0].train)
    return build_model(loaded.config.model, loaded.config.compile, pre)


def _layers(model) -> list[tuple[str, str]]:
    return [(type(layer).__name__, layer.name) for layer in model.layers]


def test_wide_deep_aux_matches_hand_built_functional_model():
    from kerastrain import _keras

    keras = _keras.keras()
    layers = keras.layers
    input_a = keras.Input(shape=[5], name="wide_input")
    input_b = keras.Input(shape=[6], name="deep_input")
    hidden1 = layers.Dense(30, activation="relu", name="hidden1")(input_b)
    hidden2 = layers.Dense(30, activation="relu", name="hidden2")(hidden1)
    concat = layers.Concatenate(name="concat")([input_a, hidden2])
    output = layers.Dense(1, name="main_output")(concat)
    aux_output = layers.Dense(1, name="aux_output")(hidden2)
    expected = keras.Model(inputs=[input_a, input_b], outputs=[output, aux_output])

    built = _model_for(CONFIGS / "wide_deep_aux.yaml")
    assert _layers(built) == _layers(expected)
    # hidden1 6*30+30, hidden2 30*30+30, main_output (5+30)+1, aux_output 30+1
    assert built.count_params() == expected.count_params() == 210 + 930 + 36 + 31
    assert built.output_names == ["main_output", "aux_output"]


def test_ticket_classifier_matches_hand_built_functional_model():
    from kerastrain import _keras

    keras = _keras.keras()
    layers = keras.layers
    vocabulary, tags = 1000, 100
    title = keras.Input(shape=(vocabulary,), name="title")
    text_body = keras.Input(shape=(vocabulary,), name="text_body")
    tags_in = keras.Input(shape=(tags,), name="tags")
    features = layers.Concatenate(name="features")([title, text_body, tags_in])
    features = layers.Dense(64, activation="relu", name="hidden")(features)
    priority = layers.Dense(1, activation="sigmoid", name="priority")(features)
    department = layers.Dense(4, activation="softmax", name="department")(features)
    expected = keras.Model(inputs=[title, text_body, tags_in], outputs=[priority, department])

    built = _model_for(CONFIGS / "ticket_classifier.yaml", "data.source.n_samples=64")
    assert _layers(built) == _layers(expected)
    assert built.count_params() == expected.count_params()


def test_single_input_wide_deep_concatenates_the_input_and_the_deep_path():
    model = _model_for(CONFIGS / "wide_deep.yaml")
    concat = model.get_layer("concat")
    assert concat.output.shape[-1] == 10 + 30  # every diabetes feature, then hidden2


def _fit(runner, config: Path, runs: Path, *overrides: str) -> Path:
    args = ["fit", str(config), "--quiet", "--set", f"output.runs_dir={runs}"]
    for override in overrides:
        args += ["--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def test_aux_output_total_loss_is_the_weighted_sum(runner, tmp_path: Path):
    from kerastrain.inference import evaluate

    run = _fit(runner, CONFIGS / "wide_deep_aux.yaml", tmp_path, "training.epochs=3")
    scores = evaluate(run)["metrics"]
    assert {"loss", "main_output_loss", "aux_output_loss", "main_output_mae"} <= set(scores)
    weighted = 0.9 * scores["main_output_loss"] + 0.1 * scores["aux_output_loss"]
    assert scores["loss"] == pytest.approx(weighted, rel=1e-5)
    assert scores["main_output_loss"] != pytest.approx(scores["aux_output_loss"], rel=1e-3)
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("validation", "test"):
        got = metrics[split]
        assert got["loss"] == pytest.approx(
            0.9 * got["main_output_loss"] + 0.1 * got["aux_output_loss"], rel=1e-5)
    with open(run / "history.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert {"loss", "main_output_loss", "aux_output_loss", "val_loss", "val_main_output_loss",
            "val_aux_output_loss", "main_output_mae"} <= set(header)


@pytest.mark.parametrize("name", ["wide_deep", "wide_deep_two_inputs", "wide_deep_aux",
                                  "ticket_classifier"])
def test_example_config_trains_and_evaluates_from_the_cli(runner, tmp_path: Path, name: str):
    overrides = ["training.epochs=2"]
    if name == "ticket_classifier":
        overrides.append("data.source.n_samples=256")
    run = _fit(runner, CONFIGS / f"{name}.yaml", tmp_path, *overrides)
    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["metrics"]
    assert np.isfinite(scores["loss"])
    summary = (run / "summary.txt").read_text()
    assert "Connected to" in summary and "Final metrics" in summary
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    if (run / "model.png").exists():
        assert not any("model.png" in note for note in info.get("notes", []))
    else:
        assert any(note.startswith("model.png skipped") for note in info["notes"])


def _write_tickets(path: Path, n: int, vocabulary: int = 50, with_targets: bool = True) -> None:
    rng = np.random.default_rng(0)
    arrays = {"title": rng.integers(0, 2, (n, vocabulary)).astype(np.float32),
              "text_body": rng.integers(0, 2, (n, vocabulary)).astype(np.float32),
              "tags": rng.integers(0, 2, (n, 10)).astype(np.float32)}
    if with_targets:
        arrays["priority"] = rng.random(n).astype(np.float32)
        arrays["department"] = np.array(["billing", "sales", "support", "tech"])[
            rng.integers(0, 4, n)]
    np.savez(path, **arrays)


def test_npz_arrays_feed_named_inputs_and_predict_prefixes_each_output(runner, tmp_path):
    data = tmp_path / "tickets.npz"
    _write_tickets(data, 120)
    config = tmp_path / "tickets.yaml"
    text = (CONFIGS / "ticket_classifier.yaml").read_text()
    text = text.replace("{type: synthetic, name: tickets, n_samples: 1280, n_features: 1000, "
                        "n_classes: 4}", f"{{type: npz, path: {data}}}")
    config.write_text(text)
    run = _fit(runner, config, tmp_path / "runs", "training.epochs=1")
    pre = json.loads((run / "preprocessing.json").read_text())
    assert pre["kind"] == "graph"
    assert {k: v["input_shape"] for k, v in pre["inputs"].items()} == {
        "title": [50], "text_body": [50], "tags": [10]}
    assert pre["outputs"]["department"]["target"]["classes"] == ["billing", "sales", "support",
                                                                 "tech"]
    new = tmp_path / "new.npz"
    _write_tickets(new, 7, with_targets=False)
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(run), str(new), "--output", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    assert list(rows[0]) == ["priority", "department", "department_prob_billing",
                             "department_prob_sales", "department_prob_support",
                             "department_prob_tech"]
    assert rows[0]["department"] in {"billing", "sales", "support", "tech"}
    assert sum(float(rows[0][f"department_prob_{c}"]) for c in
               ("billing", "sales", "support", "tech")) == pytest.approx(1.0, abs=1e-4)

    # evaluate scores, output by output, the values predict wrote for the same rows
    labelled = tmp_path / "labelled.npz"
    _write_tickets(labelled, 7)  # the same rows, with their targets
    truth = np.load(labelled)
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(labelled), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["metrics"]
    priority = np.array([float(r["priority"]) for r in rows]) - truth["priority"]
    assert scores["priority_mean_absolute_error"] == pytest.approx(np.mean(np.abs(priority)),
                                                                   rel=1e-4)
    assert scores["priority_loss"] == pytest.approx(np.mean(priority ** 2), rel=1e-4)
    hits = [r["department"] == d for r, d in zip(rows, truth["department"], strict=True)]
    assert scores["department_accuracy"] == pytest.approx(np.mean(hits))
    given = [float(r[f"department_prob_{d}"]) for r, d in zip(rows, truth["department"],
                                                               strict=True)]
    assert scores["department_loss"] == pytest.approx(-np.mean(np.log(given)), rel=1e-4)


def test_declared_input_shape_must_match_the_data(tmp_path: Path):
    from kerastrain.training.check import check

    config = tmp_path / "shape.yaml"
    config.write_text((CONFIGS / "wide_deep_two_inputs.yaml").read_text().replace(
        "{name: wide_input, columns: [0, 1, 2, 3, 4]}",
        "{name: wide_input, columns: [0, 1, 2, 3, 4], shape: [4]}"))
    with pytest.raises(ConfigError) as caught:
        check(load_config(config))
    assert f"{config}:13  model.inputs.0.shape: input 'wide_input' is declared with shape " \
           "[4], but its data has shape [5]" in caught.value.render()


def test_output_width_is_checked_per_output(tmp_path: Path):
    from kerastrain.training.check import check

    config = tmp_path / "width.yaml"
    config.write_text((CONFIGS / "ticket_classifier.yaml").read_text().replace(
        "{name: department, type: Dense, units: 4,", "{name: department, type: Dense, units: 3,"))
    with pytest.raises(ConfigError) as caught:
        check(load_config(config, ["data.source.n_samples=64"]))
    text = caught.value.render()
    assert "model.outputs.1: output 'department': the model outputs 3 values per row, but " \
           "the target has 4 classes" in text


def test_layer_stack_still_builds_a_sequential_model():
    model = _model_for(CONFIGS / "iris_mlp.yaml")
    assert type(model).__name__ == "Sequential"
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense", "Dense"]
    assert model.count_params() == (4 * 32 + 32) + (32 * 16 + 16) + (16 * 3 + 3)


def test_graph_config_round_trips_through_the_resolved_config(tmp_path: Path):
    import yaml

    loaded = load_config(CONFIGS / "wide_deep_aux.yaml")
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(yaml.safe_dump(loaded.config.resolved(), sort_keys=False))
    again = load_config(resolved).config
    assert again == loaded.config
    assert again.model.nodes[4].inputs == ["hidden2"]
    assert again.compile.loss_weights == {"main_output": 0.9, "aux_output": 0.1}


def test_set_overrides_reach_graph_nodes_and_per_output_fields():
    loaded = load_config(CONFIGS / "wide_deep_aux.yaml",
                         ["model.nodes.0.units=64", "compile.loss_weights.aux_output=0.3",
                          "compile.metrics.aux_output=mae"])
    cfg = loaded.config
    assert cfg.model.nodes[0].args["units"] == 64
    assert cfg.compile.loss_weights == {"main_output": 0.9, "aux_output": 0.3}
    assert cfg.compile.metrics == {"main_output": ["mae"], "aux_output": ["mae"]}


def test_plot_graph_writes_model_png_or_returns_a_note(tmp_path: Path, monkeypatch):
    from kerastrain import _keras
    from kerastrain.training.report import plot_graph

    utils = _keras.keras().utils

    def drawn(model, to_file, **kwargs):
        Path(to_file).write_bytes(b"\x89PNG")

    def no_pydot(model, to_file, **kwargs):
        raise ImportError("You must install pydot (`pip install pydot`) for `plot_model`.")

    monkeypatch.setattr(utils, "plot_model", drawn)
    assert plot_graph(object(), tmp_path / "model.png") is None
    assert (tmp_path / "model.png").exists()
    monkeypatch.setattr(utils, "plot_model", no_pydot)
    note = plot_graph(object(), tmp_path / "again.png")
    assert note.startswith("model.png skipped: ImportError: You must install pydot")
    assert "docs/graph_models.md" in note
    assert not (tmp_path / "again.png").exists()


def _grouped_graph(tmp_path: Path, inputs: list[dict]) -> Path:
    config = {
        "name": "grouped-graph", "seed": 0,
        "data": {"source": {"type": "csv", "path": str(TEST_CONFIGS.parent / "data" /
                                                      "grouped.csv")},
                 "target": "target", "preprocessing": {"categorical_columns": []}},
        "model": {"inputs": inputs,
                  "nodes": [{"name": "out", "type": "Dense", "units": 2,
                             "activation": "softmax", "inputs": [inputs[0]["name"]]}],
                  "outputs": ["out"]},
        "compile": {"loss": "sparse_categorical_crossentropy"},
        "validation": {"scheme": "kfold", "n_splits": 3, "groups": "patient",
                       "time_order": False, "stratify": False},
        "output": {"runs_dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "grouped.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_graph_input_never_takes_the_column_that_steers_the_splits(tmp_path: Path):
    from kerastrain.experiment import load_experiment

    loaded = load_config(_grouped_graph(tmp_path, [{"name": "features"}]))
    experiment = load_experiment(loaded)
    assert experiment.graph.inputs["features"] == ["day", "x0", "x1"]
    with pytest.raises(ConfigError) as caught:
        load_experiment(load_config(_grouped_graph(
            tmp_path, [{"name": "features", "columns": ["x0", "patient"]}])))
    assert "model.inputs.0.columns.1: 'patient' steers the splits" in caught.value.render()

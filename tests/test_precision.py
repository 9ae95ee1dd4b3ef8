"""`runtime.dtype_policy`: the model the tool builds (and the model.keras it saves) computes
under the policy, its outputs stay float32 under a mixed one, and run.json states it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import iris_config, write_config
from kerastrain.config import load_config
from kerastrain.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _keras():
    from kerastrain import _keras

    return _keras.keras()


def _built(config: Path, *overrides: str):
    from kerastrain.experiment import load_experiment
    from kerastrain.models.model import build_model

    loaded = load_config(config, list(overrides))
    experiment = load_experiment(loaded)
    pre = experiment.preprocessor(experiment.plan.folds[0].train)
    cfg = loaded.config
    return build_model(cfg.model, cfg.compile, pre, cfg.runtime.dtype_policy)


def _assert_mixed(model, output_names: set[str]) -> None:
    for layer in model.layers:
        if layer.name in output_names:
            assert (layer.compute_dtype, layer.variable_dtype) == ("float32", "float32")
        elif layer.weights:
            assert (layer.compute_dtype, layer.variable_dtype) == ("float16", "float32")
            assert all(w.dtype == "float32" for w in layer.weights)
    assert all(t.dtype == "float32" for t in model.outputs)


def test_stack_layers_compute_in_float16_with_float32_variables_and_output(tmp_path):
    keras = _keras()
    config = write_config(tmp_path / "iris.yaml", iris_config(tmp_path / "runs"))
    model = _built(config, "runtime.dtype_policy=mixed_float16")
    assert model.layers[0].compute_dtype == "float16"
    assert model.layers[0].variable_dtype == "float32"
    _assert_mixed(model, {model.layers[-1].name})
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone


def test_without_a_policy_the_model_is_float32(tmp_path):
    keras = _keras()
    config = write_config(tmp_path / "iris.yaml", iris_config(tmp_path / "runs"))
    model = _built(config)
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_a_layer_dtype_given_in_args_is_kept(tmp_path):
    cfg = iris_config(tmp_path / "runs")
    cfg["model"]["layers"][-1]["dtype"] = "mixed_float16"
    config = write_config(tmp_path / "iris.yaml", cfg)
    model = _built(config, "runtime.dtype_policy=mixed_float16")
    assert model.layers[-1].compute_dtype == "float16"


def test_graph_outputs_stay_float32_under_a_mixed_policy():
    model = _built(CONFIGS / "wide_deep_aux.yaml", "runtime.dtype_policy=mixed_bfloat16")
    outputs = set(load_config(CONFIGS / "wide_deep_aux.yaml").config.model.outputs)
    hidden = [layer for layer in model.layers if layer.weights and layer.name not in outputs]
    assert hidden and all(layer.compute_dtype == "bfloat16" for layer in hidden)
    assert all(model.get_layer(name).compute_dtype == "float32" for name in outputs)
    assert all(t.dtype == "float32" for t in model.outputs)


def test_an_unknown_policy_is_reported_at_its_key(tmp_path):
    from kerastrain.training.check import check

    config = write_config(tmp_path / "iris.yaml", iris_config(tmp_path / "runs"))
    with pytest.raises(ConfigError) as info:
        check(load_config(config, ["runtime.dtype_policy=float17"]))
    assert "runtime.dtype_policy" in str(info.value)


def test_fit_saves_a_mixed_model_and_states_the_policy(tmp_path):
    """The saved model.keras loads with the policy it was trained under (and its
    LossScaleOptimizer), run.json says so, and the training differs from float32's."""
    from kerastrain.training.fit import fit

    keras = _keras()
    cfg = iris_config(tmp_path / "runs", training={"epochs": 2, "batch_size": 16})
    config = write_config(tmp_path / "iris.yaml", cfg)
    run, _ = fit(load_config(config, ["runtime.dtype_policy=mixed_float16"]))
    info = json.loads((run.path / "run.json").read_text())
    assert info["dtype_policy"] == {"name": "mixed_float16", "compute_dtype": "float16",
                                    "variable_dtype": "float32", "output_dtype": "float32"}
    model = keras.models.load_model(run.model)
    assert model.layers[0].compute_dtype == "float16"
    _assert_mixed(model, {model.layers[-1].name})
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x = np.zeros((2, 4), dtype=np.float32)
    assert model.predict(x, verbose=0).dtype == np.float32

    plain, _ = fit(load_config(config))
    assert json.loads((plain.path / "run.json").read_text())["dtype_policy"]["name"] == "float32"
    assert (plain.history.read_bytes() != run.history.read_bytes())

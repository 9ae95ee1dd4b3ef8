"""The registry: Keras names the Keras way, with the closest names on a miss."""

from __future__ import annotations

import pytest

from kerastrain import registry


def test_names_are_case_insensitive_and_instantiated() -> None:
    optimizer = registry.create("optimizers", "adam", {"learning_rate": 0.01})
    assert type(optimizer).__name__ == "Adam"
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    assert type(registry.create("layers", "dense", {"units": 2})).__name__ == "Dense"


def test_loss_and_metric_strings_stay_for_compile() -> None:
    assert registry.identifier("losses", "mse") == "mse"
    assert registry.identifier("metrics", "accuracy") == "accuracy"  # resolved from the loss
    assert type(registry.identifier("metrics", "AUC", {"curve": "PR"})).__name__ == "AUC"


def test_create_always_makes_a_keras_object() -> None:
    assert registry.create("losses", "mse").__name__ == "mean_squared_error"
    assert type(registry.create("losses", "MeanSquaredError")).__name__ == "MeanSquaredError"
    assert type(registry.create("metrics", "mae")).__name__ == "MeanAbsoluteError"
    assert callable(registry.create("activations", "relu"))
    with pytest.raises(registry.UnknownName, match="resolved by compile from the loss"):
        registry.create("metrics", "accuracy")


def test_each_kind_is_scanned_once() -> None:
    registry.names("layers")
    scans = registry._table.cache_info().misses
    for name in ("Dense", "dense", "Dropout", "LayerNormalization"):
        registry.lookup("layers", name)
    registry.names("layers")
    assert registry._table.cache_info().misses == scans
    assert "ExponentialDecay" in registry.names("schedules")


def test_miss_gives_closest_names() -> None:
    with pytest.raises(registry.UnknownName, match=r"unknown layer 'Dens'\. Did you mean "
                                                   r"'Dense'"):
        registry.lookup("layers", "Dens")


def test_unknown_argument_is_named() -> None:
    with pytest.raises(registry.BadArguments) as caught:
        registry.create("layers", "Dense", {"unit": 3})
    assert caught.value.argument == "unit"
    assert "Did you mean 'units'?" in str(caught.value)


def test_nested_objects_resolve() -> None:
    layer = registry.create("layers", "Dense", {
        "units": 2, "activation": "relu",
        "kernel_regularizer": {"type": "L2", "l2": 0.01},
        "kernel_initializer": "he_normal"})
    assert type(layer.kernel_regularizer).__name__ == "L2"
    assert type(layer.kernel_initializer).__name__ == "HeNormal"
    with pytest.raises(registry.BadArguments, match="unknown regularizer 'L3'") as caught:
        registry.create("layers", "Dense", {"units": 2, "kernel_regularizer": {"type": "L3"}})
    assert caught.value.argument == "kernel_regularizer"


def test_learning_rate_schedule() -> None:
    optimizer = registry.create("optimizers", "SGD", {"learning_rate": {
        "type": "ExponentialDecay", "initial_learning_rate": 0.1, "decay_steps": 10,
        "decay_rate": 0.5}})
    assert type(optimizer._learning_rate).__name__ == "ExponentialDecay"


def test_every_kind_lists_names() -> None:
    for kind in registry.KINDS:
        assert registry.names(kind), kind
    assert {"Adam", "SGD", "RMSprop"} <= set(registry.names("optimizers"))
    assert {"EarlyStopping", "ModelCheckpoint"} <= set(registry.names("callbacks"))


@pytest.mark.parametrize("kind", list(registry.KINDS))
def test_names_read_from_keras_files_match_the_scan(kind) -> None:
    """`kerastrain list` reads Keras's API files instead of importing Keras: the same
    names as the scan of the imported module, for every kind."""
    from kerastrain import kerasnames

    module, base = registry.KINDS[kind]
    listed = kerasnames.public_names(module, base, registry._NOT_NAMES)
    assert listed is not None
    listed |= set(registry._SHORT_NAMES.get(kind, ()))
    if kind == "metrics":
        listed |= set(registry.METRIC_SHORTHANDS)
    assert listed == set(registry._table(kind))


def test_unsettled_names_fall_back_to_none() -> None:
    from kerastrain import kerasnames

    assert kerasnames.public_names("no_such_module", "Layer", set()) is None


# What each required constructor argument gets in a minimal config (YAML values only).
MINIMAL_ARGS = {
    "units": 2, "filters": 2, "kernel_size": 2, "rate": 0.1, "pool_size": 2,
    "output_size": 2, "activation": "relu", "height": 2, "width": 2, "factor": 0.1,
    "height_factor": 0.1, "width_factor": 0.1, "n": 2, "scale": 0.5, "target_shape": [2],
    "dims": [1], "axes": 1, "stddev": 0.1, "input_dim": 4, "output_dim": 2, "num_bins": 4,
    "num_heads": 2, "key_dim": 2, "head_dim": 2, "num_query_heads": 2,
    "num_key_value_heads": 1, "equation": "ab,bc->ac", "output_shape": 2, "max_number": 2,
    "layer": {"type": "Dense", "units": 2}, "filename": "log.csv", "filepath": "m.keras",
    "directory": "checkpoints", "num_classes": 2, "target_class_ids": [0], "recall": 0.5,
    "precision": 0.5, "specificity": 0.5, "sensitivity": 0.5, "initial_learning_rate": 0.1,
    "decay_steps": 10, "decay_rate": 0.9, "first_decay_steps": 10, "boundaries": [10],
    "values": [0.1, 0.01]}
SPECIAL_ARGS = {"Bidirectional": {"layer": {"type": "LSTM", "units": 2}},
                "CategoryEncoding": {"num_tokens": 4}, "Discretization": {"num_bins": 4},
                "RandomPosterization": {"factor": 4}}


@pytest.mark.parametrize("kind", list(registry.KINDS))
def test_every_listed_name_works_in_a_minimal_config(kind) -> None:
    """`kerastrain list KIND` lists only what a config can use: each name, with its
    required arguments as YAML values, passes the config's own check and makes its Keras
    object (the same `create_object` that fit's checks call)."""
    import inspect

    from kerastrain.config.schema import KerasObject

    listed = registry.names(kind)
    assert listed == sorted(set(listed), key=lambda n: (n.lower(), n))
    for i, name in enumerate(listed):
        entry = registry.lookup(kind, name)
        args: dict = {}
        if entry.is_class:
            params = inspect.signature(entry.obj.__init__).parameters
            args = {p: MINIMAL_ARGS[p] for p, v in params.items()
                    if p != "self" and v.default is v.empty
                    and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
            args.update(SPECIAL_ARGS.get(name, {}))
        elif kind == "layers":
            raise AssertionError(f"{name} is a function, not a layer")
        if entry.obj is None:  # a metric string compile resolves ('accuracy')
            continue
        spec = KerasObject(type=name, **args) if args else name
        assert registry.create_object(kind, spec, (kind, i)) is not None, name


def test_what_keras_adds_itself_or_needs_python_is_not_listed() -> None:
    layers, callbacks = set(registry.names("layers")), set(registry.names("callbacks"))
    assert not layers & {"GRUCell", "Wrapper", "Pipeline", "JaxLayer", "FlaxLayer",
                         "TorchModuleWrapper", "TFSMLayer", "add", "concatenate"}
    assert not callbacks & {"CallbackList", "History", "ProgbarLogger"}
    assert {"Dense", "Add", "Bidirectional", "TimeDistributed"} <= layers
    assert {"EarlyStopping", "ModelCheckpoint", "CSVLogger"} <= callbacks


def test_listing_is_one_order_whatever_the_hash_seed() -> None:
    import os
    import subprocess
    import sys

    code = "from kerastrain import registry; print(registry.names('layers'))"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "3", "4")}
    assert len(seen) == 1

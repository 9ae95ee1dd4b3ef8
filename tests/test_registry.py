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

"""Training faster without training differently: small data fed as one tf.data pipeline
(`models/feed.py`), and one traced model per process lent to every fold of the same kind
(`training/reuse.py`)."""

from __future__ import annotations

import numpy as np
import pytest

from kerastrain import _keras
from kerastrain.models import feed
from kerastrain.training import reuse

keras = _keras.keras()


def _model(units: int = 8, seed: int = 0):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dropout(0.2),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _data(rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, 4)).astype("float32"), rng.integers(0, 3, rows)


def _train(model, x, y):
    history = model.fit(**feed.training_input(x, y, 8, True, 7), epochs=3, verbose=0)
    return history.history["loss"], [np.array(w) for w in model.get_weights()]


def test_a_lent_model_trains_as_the_fresh_one_would() -> None:
    reuse.forget()
    x, y = _data()
    traced = _model()
    assert reuse.lend(traced, None) is traced  # the first of its kind is kept
    _train(traced, x, y)
    traced.optimizer.learning_rate.assign(1e-4)  # as ReduceLROnPlateau would leave it
    traced._initial_epoch = 2  # as a resumed fit leaves it

    fresh = _model()
    start = [np.array(w) for w in fresh.get_weights()]
    lent = reuse.lend(fresh, None)
    assert lent is traced
    for got, want in zip(lent.get_weights(), start, strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(lent.optimizer.iterations) == 0
    assert float(lent.optimizer.learning_rate) == pytest.approx(0.01)
    assert lent._initial_epoch is None

    loss_lent, weights_lent = _train(lent, x, y)
    loss_fresh, weights_fresh = _train(_model(), x, y)  # never lent: trained as built
    assert loss_lent == loss_fresh
    for got, want in zip(weights_lent, weights_fresh, strict=True):
        np.testing.assert_array_equal(got, want)
    reuse.forget()


def test_a_model_of_another_kind_is_not_lent_and_becomes_the_kept_one() -> None:
    reuse.forget()
    first = _model(8)
    assert reuse.lend(first, None) is first
    other = _model(16)
    assert reuse.lend(other, None) is other
    again = _model(16)
    assert reuse.lend(again, None) is again  # nothing traced yet: nothing to lend
    other = again
    _train(other, *_data())
    again = _model(16)
    assert reuse.lend(again, None) is other
    assert reuse.lend(_model(16), "another strategy") is not other
    reuse.forget()


def test_small_arrays_become_one_pipeline_and_large_ones_stay_arrays(
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data()
    small = feed.training_input(x, y, 8, True, 0)
    assert isinstance(small["x"], _keras.tf().data.Dataset) and small["y"] is None
    assert small["shuffle"] is False and small["batch_size"] is None
    assert [len(b[1]) for b in small["x"]] == [8] * 5
    monkeypatch.setattr(feed, "SMALL_BYTES", x.nbytes)
    large = feed.training_input(x, y, 8, True, 0)
    assert large["x"] is x and large["y"] is y and large["shuffle"] is True
    assert feed.evaluation_input(x, y, 8) == (x, y)


def test_every_epoch_is_reshuffled_and_a_resumed_model_sees_the_same_orders() -> None:
    x = np.arange(24, dtype="float32").reshape(24, 1)
    y = np.arange(24)
    data = feed.training_input(x, y, 5, True, 3)["x"]
    orders = [np.concatenate([b[1].numpy() for b in data]) for _ in range(6)]
    assert all(sorted(o) == list(range(24)) for o in orders)
    assert len({tuple(o) for o in orders}) == 6  # a new order each iterator
    resumed = feed.training_input(x, y, 5, True, 3, skip_epochs=2)["x"]
    for want in orders[2 * feed.DRAWS_PER_EPOCH:]:
        np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in resumed]), want)
    unshuffled = feed.training_input(x, y, 5, False, 3)["x"]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in unshuffled]), y)

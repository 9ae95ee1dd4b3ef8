"""The run's own Keras callbacks, each alone on a tiny model: held-out curves, epoch
progress, and the state kept for resume."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kerastrain import _keras
from kerastrain.rundir import RunDir
from kerastrain.training.backup import ResumeState, resumable
from kerastrain.training.callbacks import EpochProgress, HeldOutCurves
from kerastrain.training.progress import Progress


@pytest.fixture
def tiny():
    keras = _keras.keras()
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, x, y


def test_held_out_curves_score_every_epoch_outside_the_logs(tiny) -> None:
    model, x, y = tiny
    into: dict[str, list[float]] = {}
    history = model.fit(x[:48], y[:48], epochs=3, verbose=0,
                        callbacks=[HeldOutCurves(x[48:], y[48:], 16, into)])
    assert sorted(into) == ["heldout_accuracy", "heldout_loss"]
    assert len(into["heldout_loss"]) == 3
    assert not any(k.startswith("heldout") for k in history.history)
    assert into["heldout_loss"][-1] == pytest.approx(
        model.evaluate(x[48:], y[48:], verbose=0, return_dict=True)["loss"], rel=1e-5)


def test_epoch_progress_reports_each_epoch(tiny) -> None:
    model, x, y = tiny
    seen = []

    class Recorded(Progress):
        def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict) -> None:
            seen.append((label, epoch, epochs, sorted(logs)))

    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25,
              callbacks=[EpochProgress(Recorded(), "fold 0-1", 2)])
    assert [s[:3] for s in seen] == [("fold 0-1", 1, 2), ("fold 0-1", 2, 2)]
    assert seen[0][3] == ["accuracy", "loss", "val_accuracy", "val_loss"]


def test_resume_state_keeps_every_epoch_and_the_steering_counters(tiny, tmp_path) -> None:
    keras = _keras.keras()
    model, x, y = tiny
    place = RunDir(Path(tmp_path))
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    callbacks = resumable(place, [stopping], {})
    state = callbacks[0]
    assert isinstance(state, ResumeState) and state.resumed_from is None
    model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, validation_freq=2,
              callbacks=[stopping, *callbacks])
    history = state.history()
    assert len(history["loss"]) == 3
    assert math.isnan(history["val_loss"][0]) and not math.isnan(history["val_loss"][1])
    assert len(state.rows) == 3 and "wait" in state.states["3"]["callbacks"]["0"]
    assert not place.backup.exists()  # a fit that ends normally leaves no backup

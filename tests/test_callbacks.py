"""The run's own Keras callbacks, each alone on a tiny model: held-out curves, epoch
progress, and the state kept for resume."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import iris_config, write_config
from kerastrain import _keras
from kerastrain.rundir import RunDir, read_history
from kerastrain.training.backup import EpochBackup, backup_epoch
from kerastrain.training.callbacks import EpochProgress, HeldOutCurves
from kerastrain.training.progress import Progress
from test_cli import iris_csv


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


def test_backup_keeps_every_epoch_and_the_steering_counters(tiny, tmp_path) -> None:
    keras = _keras.keras()
    model, x, y = tiny
    place = RunDir(Path(tmp_path))
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    backup = EpochBackup(place, [stopping], {}, interval_s=3600)
    assert backup.resumed_from is None
    model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, validation_freq=2,
              callbacks=[stopping, backup])
    history = backup.history()
    assert len(history["loss"]) == 3
    assert math.isnan(history["val_loss"][0]) and not math.isnan(history["val_loss"][1])
    assert not place.backup_file.exists()  # throttled: nothing written within the hour
    backup.flush()  # as on Ctrl-C or a failure: the last finished epoch, at once
    assert backup_epoch(place) == 3


def test_a_resumed_fit_continues_where_the_backup_left_off(tiny, tmp_path) -> None:
    keras = _keras.keras()
    model, x, y = tiny
    place = RunDir(Path(tmp_path))
    first = EpochBackup(place, [], {}, interval_s=0)  # every epoch on disk
    model.fit(x, y, epochs=2, verbose=0, callbacks=[first])
    weights = [w.copy() for w in model.get_weights()]
    iterations = int(model.optimizer.iterations)
    keras.backend.clear_session()
    again = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    again.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    seen = []

    class Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            seen.append(epoch)

    resumed = EpochBackup(place, [], {}, interval_s=0)
    assert resumed.resumed_from == 2

    class Check(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            for got, want in zip(self.model.get_weights(), weights, strict=True):
                np.testing.assert_array_equal(got, want)
            assert int(self.model.optimizer.iterations) == iterations

    again.fit(x, y, epochs=3, verbose=0, callbacks=[resumed, Check(), Epochs()])
    assert seen == [2]  # only the epoch the backup did not hold
    assert len(resumed.history()["loss"]) == 3


def test_the_best_checkpoint_holds_the_weights_of_the_lowest_val_loss(cli, tmp_path) -> None:
    """A noisy run (a high learning rate) whose lowest val_loss is not at its last epoch:
    checkpoints/best.keras, scored on the validation rows, gives that lowest val_loss;
    model.keras gives the last epoch's."""
    config = iris_config(tmp_path / "runs")
    config["compile"]["optimizer"]["learning_rate"] = 0.3
    config["training"]["epochs"] = 5  # val_loss: 0.28, 0.045, 0.11, 0.028, 0.048
    config["output"]["plots"] = False
    result = cli("fit", write_config(tmp_path / "c.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    val_loss = read_history(run / "history.csv")["val_loss"]
    best = int(np.argmin(val_loss))
    assert best < len(val_loss) - 1 and val_loss[best] < val_loss[-1]  # best is not last
    (fold,) = json.loads((run / "splits.json").read_text())["folds"]
    rows = iris_csv(tmp_path / "validation.csv", np.array(fold["validation"]))
    scored = {}
    for name, model in (("last", run / "model.keras"),
                        ("best", run / "checkpoints" / "best.keras")):
        copy = Path(shutil.copytree(run, tmp_path / name))
        shutil.copy(model, copy / "model.keras")
        result = cli("evaluate", copy, "--data", rows, "--json")
        assert result.exit_code == 0, result.output
        scored[name] = json.loads(result.stdout)["metrics"]["loss"]
    assert scored["best"] == pytest.approx(val_loss[best], rel=1e-5)
    assert scored["last"] == pytest.approx(val_loss[-1], rel=1e-5)

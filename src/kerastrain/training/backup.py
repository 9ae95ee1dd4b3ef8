"""Epoch-level resumption of one fold (or the hold-out, or the refit): Keras's own
`BackupAndRestore` for the weights, the optimizer and the epoch, plus what it leaves
out, kept beside it in the same backup folder: every epoch's logs (so `history.csv`
holds each epoch once across an interruption) and the counters of the callbacks that
steer training (EarlyStopping's patience and best weights, ReduceLROnPlateau's
plateau, the best checkpoint's best value), which Keras resets on every `fit`.

The backup folder is deleted by Keras when `fit` ends normally; an interrupted or failed
`fit` leaves it for `kerastrain resume`."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.rundir import History, RunDir, atomic_path, write_json

keras = _keras.keras()
_STATE = "kerastrain_state.json"
_KERAS_METADATA = "training_metadata.json"
# The attributes Keras's steering callbacks reset in on_train_begin and count across epochs.
_COUNTERS = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


def backup_epoch(place: RunDir) -> int | None:
    """The number of epochs the backup of `place` holds (what `fit` resumes from), or
    None when there is no backup."""
    path = place.backup / _KERAS_METADATA
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return None


def _row(logs: dict | None, heldout: dict[str, list[float]]) -> dict[str, float]:
    row = {k: float(v) for k, v in (logs or {}).items()}
    row.update({k: v[-1] for k, v in heldout.items() if v})
    return row


def compact(rows: list[dict[str, float]]) -> History:
    """Per-epoch rows as a history: one value per epoch for every quantity any epoch
    logged, NaN where an epoch did not log it (val_* off the validation epochs)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: [row.get(k, math.nan) for row in rows] for k in keys}


class ResumeState(keras.callbacks.Callback):
    """Records each epoch's logs and the steering callbacks' counters before Keras's
    BackupAndRestore (right after it in the list) saves the weights for the same epoch,
    and puts them back after those callbacks reset themselves at the start of a resumed
    `fit`. `before` are the callbacks ahead of it; `heldout` is filled by `HeldOutCurves`,
    one of them. `history()` is the merged history of every session."""

    def __init__(self, place: RunDir, before: list[Any], heldout: dict[str, list[float]]):
        super().__init__()
        self.backup_dir = place.backup
        self.state_path = place.backup / _STATE
        self.resumed_from = backup_epoch(place)
        self.before, self.heldout = before, heldout
        self.rows: list[dict[str, float]] = []
        self.states: dict[str, Any] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        resumed_from = self.resumed_from
        if resumed_from is None or not self.state_path.exists():
            return
        saved = json.loads(self.state_path.read_text(encoding="utf-8"))
        self.rows = saved["rows"][:resumed_from]
        self.states = {k: v for k, v in saved["states"].items() if int(k) <= resumed_from}
        state = self.states.get(str(resumed_from))
        if state is None:  # interrupted between the two saves: nothing to restore
            return
        for i, counters in state["callbacks"].items():
            callback = self.before[int(i)]
            for name, value in counters.items():
                setattr(callback, name, value)
            weights = self.backup_dir / f"best_weights_{resumed_from}_{i}.npz"
            if weights.exists():
                with np.load(weights) as data:
                    callback.best_weights = [data[f"w{j}"] for j in range(len(data.files))]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.rows = self.rows[:epoch]
        self.rows.append(_row(logs, self.heldout))
        done = epoch + 1
        counters: dict[str, dict[str, Any]] = {}
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        for i, callback in enumerate(self.before):
            kept = {name: _number(getattr(callback, name)) for name in _COUNTERS
                    if hasattr(callback, name)}
            counters[str(i)] = {k: v for k, v in kept.items()
                                if v is not None and not (isinstance(v, float)
                                                          and math.isnan(v))}
            best = getattr(callback, "best_weights", None)
            if best is not None:
                with atomic_path(self.backup_dir / f"best_weights_{done}_{i}.npz") as tmp:
                    np.savez(tmp, **{f"w{j}": w for j, w in enumerate(best)})
        self.states = {k: v for k, v in self.states.items() if int(k) >= done - 1}
        self.states[str(done)] = {"callbacks": counters}
        write_json(self.state_path, {"rows": self.rows, "states": self.states})
        for old in self.backup_dir.glob("best_weights_*.npz"):
            if int(old.name.split("_")[2]) < done - 1:
                old.unlink()

    def history(self) -> History:
        return compact(self.rows)


def resumable(place: RunDir, before: list[Any], heldout: dict[str, list[float]]) -> list[Any]:
    """[the state keeper, Keras's BackupAndRestore], to append right after the callbacks
    `before` (whose counters they keep). Read the merged history from the first one's
    `history()`."""
    return [ResumeState(place, before, heldout),
            keras.callbacks.BackupAndRestore(str(place.backup))]

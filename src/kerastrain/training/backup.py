"""Epoch-level resumption of one model (a fold, the hold-out or the refit), in one file.

After every epoch the training state is copied in memory: the model's variables (weights,
and the seed generators' state), the optimizer's (slots, iterations, learning rate), the
epoch's logs, and the counters and best weights of the callbacks that steer training
(EarlyStopping, ReduceLROnPlateau, the best checkpoint), which Keras resets on every
`fit`. That copy is written to `checkpoints/backup/backup.npz` in one atomic replace at
most every `output.backup_interval_s` seconds, and at once when training is interrupted
or fails. So:

- Ctrl-C, SIGTERM, a failure: every finished epoch is kept;
- kill -9, a lost machine: at most `backup_interval_s` seconds of training are redone,
  and the file is never half written (the previous one stays until the new one is
  complete);
- a small model pays one write every few seconds instead of one per epoch.

The backup is deleted once the model's own files are written (`discard_backup`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
import zipfile
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.rundir import History, RunDir, atomic_path

keras = _keras.keras()
# The attributes Keras's steering callbacks reset in on_train_begin and count across epochs.
_COUNTERS = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


def backup_epoch(place: RunDir) -> int | None:
    """The number of epochs the backup of `place` holds (where `fit` resumes), or None."""
    try:
        with np.load(place.backup_file) as data:
            return int(json.loads(str(data["state"]))["epoch"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # none, or one a crash of the machine left unreadable


def discard_backup(place: RunDir) -> None:
    """Remove the backup once the model's files are written: it is no longer needed."""
    shutil.rmtree(place.backup, ignore_errors=True)


def _number(value: Any) -> float | int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    return None


def compact(rows: list[dict[str, float]]) -> History:
    """Per-epoch rows as a history: one value per epoch for every quantity any epoch
    logged, NaN where an epoch did not log it (val_* off the validation epochs)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: [row.get(k, math.nan) for row in rows] for k in keys}


class EpochBackup(keras.callbacks.Callback):
    """Keeps the training state of every epoch (in memory; on disk as described above) and
    puts it back at the start of a resumed `fit`, after the callbacks `before` (which it
    must follow in the list) have reset themselves. `heldout` is filled by
    `HeldOutCurves`, one of them. `history()` is the merged history of every session."""

    def __init__(self, place: RunDir, before: list[Any], heldout: dict[str, list[float]],
                 interval_s: float):
        super().__init__()
        self.path = place.backup_file
        self.resumed_from = backup_epoch(place)
        self.before, self.heldout, self.interval_s = before, heldout, interval_s
        self.rows: list[dict[str, float]] = []
        self.snapshot: dict[str, Any] | None = None
        self.written = time.monotonic()

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.resumed_from is None:
            return
        with np.load(self.path) as data:
            state = json.loads(str(data["state"]))
            for i, variable in enumerate(self.model.variables):
                variable.assign(data[f"model_{i}"])
            optimizer = self.model.optimizer
            if not optimizer.built:
                optimizer.build(self.model.trainable_variables)
            for i, variable in enumerate(optimizer.variables):
                variable.assign(data[f"optimizer_{i}"])
            for i, counters in state["callbacks"].items():
                callback = self.before[int(i)]
                for name, value in counters.items():
                    setattr(callback, name, value)
                if f"best_{i}_0" in data:
                    callback.best_weights = [data[f"best_{i}_{j}"] for j in
                                             range(state["best_weights"][i])]
        self.rows = state["rows"]
        epochs = self.params.get("epochs", state["epoch"])
        # A model whose training had stopped early resumes with nothing left to train.
        self.model._initial_epoch = epochs if state["stopped"] else state["epoch"]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {k: float(v) for k, v in (logs or {}).items()}
        row.update({k: v[-1] for k, v in self.heldout.items() if v})
        self.rows = [*self.rows[:epoch], row]
        self.snapshot = self._take(epoch + 1)
        if time.monotonic() - self.written >= self.interval_s:
            self.flush()

    def _take(self, done: int) -> dict[str, Any]:
        """A copy of the state after `done` epochs (arrays copied: training goes on)."""
        arrays = {f"model_{i}": np.array(v) for i, v in enumerate(self.model.variables)}
        arrays.update({f"optimizer_{i}": np.array(v)
                       for i, v in enumerate(self.model.optimizer.variables)})
        counters, best_sizes = {}, {}
        for i, callback in enumerate(self.before):
            kept = {name: _number(getattr(callback, name)) for name in _COUNTERS
                    if hasattr(callback, name)}
            counters[str(i)] = {k: v for k, v in kept.items() if v is not None}
            best = getattr(callback, "best_weights", None)
            if best is not None:
                best_sizes[str(i)] = len(best)
                arrays.update({f"best_{i}_{j}": np.array(w) for j, w in enumerate(best)})
        state = {"epoch": done, "rows": self.rows, "callbacks": counters,
                 "best_weights": best_sizes, "stopped": bool(self.model.stop_training)}
        arrays["state"] = np.array(json.dumps(state))
        return arrays

    def flush(self) -> None:
        """Write the state of the last finished epoch, in one atomic replace."""
        if self.snapshot is None:
            return
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **self.snapshot)
        self.snapshot = None
        self.written = time.monotonic()

    def history(self) -> History:
        return compact(self.rows)

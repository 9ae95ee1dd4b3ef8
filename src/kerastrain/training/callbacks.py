"""Callbacks: the user's (by Keras name, paths placed inside the run directory), the run's
own (best checkpoint, TensorBoard logs, held-out curves) and the one that reports epochs
to a `Progress`. Importing this module imports Keras."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from kerastrain import _keras
from kerastrain.config.schema import Config, KerasObject, OutputSpec
from kerastrain.errors import KeyProblem, TrainingDiverged, did_you_mean
from kerastrain.registry import create_object
from kerastrain.rundir import RunDir, atomic_path
from kerastrain.training.progress import Progress

keras = _keras.keras()

# Callback arguments that name a file or folder, with the default placed in the run dir.
_PATH_ARGS = {"ModelCheckpoint": ("filepath", "checkpoints/checkpoint.keras"),
              "TensorBoard": ("log_dir", "logs"),
              "CSVLogger": ("filename", "callbacks_log.csv")}
_STEERING_TYPES = {"earlystopping", "reducelronplateau", "modelcheckpoint"}
_ONE_BATCH_ROWS = 4096


def check_monitors(cfg: Config, log_names: list[str]) -> None:
    """A callback that monitors a quantity Keras never logs would silently do nothing."""
    available = sorted(set(log_names) | {f"val_{n}" for n in log_names})
    for i, spec in enumerate(cfg.callbacks):
        monitor = spec.args.get("monitor")
        if monitor is not None and monitor not in available:
            raise KeyProblem(("callbacks", i, "monitor"),
                             f"{spec.type} monitors {monitor!r}, which is never logged."
                             f"{did_you_mean(monitor, available)}  Logged: "
                             f"{', '.join(available)}.")


def check_no_backup(cfg: Config) -> None:
    """Every run already backs up each epoch with BackupAndRestore (for `kerastrain
    resume`); a second one would fight it over the same training state."""
    for i, spec in enumerate(cfg.callbacks):
        if spec.type.lower() == "backupandrestore":
            raise KeyProblem(("callbacks", i), "a backup of the training state is already "
                             "part of every run (checkpoints/backup, see docs/resume.md), and "
                             "`kerastrain resume RUN_DIR` continues from there. Remove this "
                             "callback.")


def steering_callbacks(cfg: Config) -> list[int]:
    """Indices of the callbacks that act on a validation quantity (`val_*`): early
    stopping, learning-rate plateaus, best checkpoints (they monitor val_loss unless told)."""
    found = []
    for i, spec in enumerate(cfg.callbacks):
        monitor = spec.args.get("monitor")
        if monitor is None and spec.type.lower() in _STEERING_TYPES:
            monitor = "val_loss"
        if isinstance(monitor, str) and monitor.startswith("val_"):
            found.append(i)
    return found


def user_callbacks(specs: list[KerasObject], place: RunDir,
                   skip: tuple[int, ...] = ()) -> list[Any]:
    """Fresh instances of the configured callbacks (but those in `skip`); relative paths
    land in `place`."""
    made = []
    for i, spec in enumerate(specs):
        if i in skip:
            continue
        args = spec.args
        for class_name, (arg, default) in _PATH_ARGS.items():
            if spec.type.lower() == class_name.lower():
                target = Path(args.get(arg, default))
                if not target.is_absolute():
                    target = place.path / target
                target.parent.mkdir(parents=True, exist_ok=True)
                args[arg] = str(target)
        made.append(create_object("callbacks", KerasObject(type=spec.type, **args),
                                  ("callbacks", i)))
    return made


TENSORBOARD_MISSING = ("the tensorboard package is not installed (pip install "
                       "'kerastrain[tensorboard]')")


def tensorboard_installed() -> bool:
    """TensorFlow (since 2.21) no longer installs tensorboard: it is the `[tensorboard]`
    extra."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_enabled(output: OutputSpec) -> bool:
    """Whether the run writes TensorBoard logs; `tensorboard: true` without the package is
    the user's mistake."""
    installed = tensorboard_installed()
    if output.tensorboard is True and not installed:
        raise KeyProblem(("output", "tensorboard"), f"TensorBoard logs need the tensorboard "
                         f"package, and {TENSORBOARD_MISSING}; or set output.tensorboard: "
                         "auto to train without them.")
    return bool(output.tensorboard) and installed


def tensorboard_status(output: OutputSpec) -> str:
    """run.json's `tensorboard`: where the logs are, or why there are none."""
    if output.tensorboard is False:
        return "off: output.tensorboard is false"
    return "logs/" if tensorboard_installed() else f"off: {TENSORBOARD_MISSING}"


def run_callbacks(output: OutputSpec, place: RunDir) -> list[Any]:
    """The run's own: the best model by val_loss in checkpoints/, TensorBoard in logs/."""
    made: list[Any] = []
    if output.checkpoints:
        made.append(BestCheckpoint(place))
    if tensorboard_enabled(output):
        made.append(keras.callbacks.TensorBoard(log_dir=str(place.logs)))
    return made


class HeldOutCurves(keras.callbacks.Callback):
    """Scores the fold's scored rows after every epoch, into `into` as `heldout_<metric>`
    (one value per epoch). It never writes to the logs, so no other callback can steer
    on it."""

    def __init__(self, x: Any, y: Any, batch_size: int, into: dict[str, list[float]]):
        super().__init__()
        self.x, self.y, self.batch_size, self.into = x, y, batch_size, into
        self.one_batch = len(x) <= _ONE_BATCH_ROWS

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # test_on_batch skips building a dataset each epoch (evaluate costs ~70 ms)
        scores = (self.model.test_on_batch(self.x, self.y, return_dict=True) if self.one_batch
                  else self.model.evaluate(self.x, self.y, batch_size=self.batch_size,
                                           verbose=0, return_dict=True))
        for key, value in scores.items():
            self.into.setdefault(f"heldout_{key}", []).append(float(value))


class BestCheckpoint(keras.callbacks.Callback):
    """checkpoints/best.keras: the model at the epoch of the lowest val_loss. The best
    weights are kept in memory (`best`, `best_weights`: the names the resume backup keeps)
    and written once, when training ends, instead of a save at every improvement."""

    def __init__(self, place: RunDir):
        super().__init__()
        self.path = place.best_checkpoint
        self.best = math.inf
        self.best_weights: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get("val_loss")
        if value is not None and float(value) < self.best:
            self.best = float(value)
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is None:
            return
        current = self.model.get_weights()
        self.model.set_weights(self.best_weights)
        try:
            with atomic_path(self.path) as tmp:
                self.model.save(tmp)
        finally:
            self.model.set_weights(current)


class StopOnNaN(keras.callbacks.Callback):
    """Keras's TerminateOnNaN, always on, made an error: a loss that is no longer a finite
    number ends training at that epoch with a message that says what to try."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise TrainingDiverged(
                    f"{key} became {float(value)} at epoch {epoch + 1}: training diverged. "
                    "Try a lower compile.optimizer.learning_rate (or clipnorm), and check "
                    "the data for extreme values; the epochs before are kept in the run "
                    "directory.")


class EpochProgress(keras.callbacks.Callback):
    """Reports each epoch's logs (learning rate aside) of the model `label` to `progress`."""

    def __init__(self, progress: Progress, label: str, epochs: int):
        super().__init__()
        self.progress, self.label, self.epochs = progress, label, epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        self.progress.epoch_end(self.label, epoch + 1, self.epochs, shown)

"""Callbacks: the user's (by Keras name, paths placed inside the run directory), the run's
own (best checkpoint, TensorBoard logs, held-out curves) and the one that reports epochs
to a `Progress`. Importing this module imports Keras."""

from __future__ import annotations

import importlib.util
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.config.schema import Config, KerasObject, OutputSpec
from kerastrain.data.streamed import RowStream
from kerastrain.errors import KeyProblem, TrainingDiverged, did_you_mean
from kerastrain.models.feed import is_stream, scoring_input
from kerastrain.registry import create_object
from kerastrain.rundir import RunDir, atomic_path
from kerastrain.training.progress import Progress

keras = _keras.keras()

# Callback arguments that name a file or folder, with the default placed in the run dir.
_PATH_ARGS = {"ModelCheckpoint": ("filepath", "checkpoints/checkpoint.keras"),
              "TensorBoard": ("log_dir", "logs"),
              "CSVLogger": ("filename", "callbacks_log.csv")}
# Callbacks whose work is a Python function: (its arguments, what it takes, what to use).
_LR_INSTEAD = ("Give the optimizer a learning-rate schedule instead (compile.optimizer: "
               "{type: Adam, learning_rate: {type: ExponentialDecay, initial_learning_rate: "
               "0.01, decay_steps: 1000, decay_rate: 0.9}}; kerastrain list schedules shows "
               "them), or use ReduceLROnPlateau")
_CODE_ARGS = {
    "learningratescheduler": (("schedule",), "`schedule`", _LR_INSTEAD),
    "lambdacallback": (("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
                        "on_train_batch_begin", "on_train_batch_end"),
                       "its on_* arguments", "Use a built-in callback"),
}
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
                             f"{did_you_mean(monitor, available)} Logged: "
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


def _placed(spec: KerasObject, place: RunDir, contain: bool) -> dict[str, Any]:
    """`spec`'s arguments with its file argument inside `place` (relative paths; with
    `contain`, absolute ones too, by their file name), the folder made."""
    args = spec.args
    for class_name, (arg, default) in _PATH_ARGS.items():
        if spec.type.lower() == class_name.lower():
            target = Path(args.get(arg, default))
            if contain and target.is_absolute():
                target = Path(target.name)
            if not target.is_absolute():
                target = place.path / target
            target.parent.mkdir(parents=True, exist_ok=True)
            args[arg] = str(target)
    return args


def user_callbacks(specs: list[KerasObject], place: RunDir,
                   skip: tuple[int, ...] = ()) -> list[Any]:
    """Fresh instances of the configured callbacks (but those in `skip`); relative paths
    land in `place`."""
    return [create_object("callbacks", KerasObject(type=spec.type, **_placed(spec, place, False)),
                          ("callbacks", i))
            for i, spec in enumerate(specs) if i not in skip]


def refuse_code_arguments(specs: list[KerasObject]) -> None:
    """Callbacks whose work is a Python function: a YAML file holds only text, and a
    config's text is never evaluated as code."""
    for i, spec in enumerate(specs):
        wanted = _CODE_ARGS.get(spec.type.lower())
        if wanted is None:
            continue
        given = [a for a in wanted[0] if a in spec.args]
        raise KeyProblem(("callbacks", i) + tuple(given[:1]),
                         f"{spec.type} takes {wanted[1]}, a Python function; a YAML file "
                         "holds only text, and kerastrain never evaluates a config's text as "
                         f"code. {wanted[2]}, or register a callback class of your own in a "
                         "plugin (plugins: [your_module]).")


def probe_callbacks(specs: list[KerasObject], model: Any, logs: dict[str, float]) -> None:
    """Every configured callback made as `fit` makes it (its files in a throwaway folder)
    and taken through what `fit` calls first: set_model, on_train_begin, one epoch with the
    logs `model` gives (and their val_ twins), on_train_end. A Keras rejection, or a
    warning while it is made (an unknown `mode` Keras would quietly replace), is a
    `KeyProblem` at `callbacks.<i>`, before any run directory exists."""
    refuse_code_arguments(specs)
    epoch_logs = {**logs, **{f"val_{k}": v for k, v in logs.items()}}
    with tempfile.TemporaryDirectory(prefix="kerastrain-probe-") as tmp:
        place = RunDir(Path(tmp))
        for i, spec in enumerate(specs):
            args = _placed(spec, place, True)
            # messages name the paths as the user wrote them, not the throwaway folder
            written = {str(args[k]): str(v) for k, v in spec.args.items() if args[k] != v}
            try:
                _probe_one(spec, args, model, epoch_logs, i)
            except KeyProblem as exc:
                message = exc.message
                for placed, original in written.items():
                    message = message.replace(placed, original)
                raise KeyProblem(exc.path, message, exc.hint) from None


def _probe_one(spec: KerasObject, args: dict[str, Any], model: Any, logs: dict[str, float],
               i: int) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        made = create_object("callbacks", KerasObject(type=spec.type, **args), ("callbacks", i))
    said = [w for w in caught if issubclass(w.category, UserWarning)]
    if said:
        raise KeyProblem(("callbacks", i), f"Keras would not take {spec.type} as written: "
                         f"{said[0].message}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made.set_model(model)
            made.on_train_begin()
            for epoch in (0, 1):  # the second one compares with the first (patience...)
                made.on_epoch_begin(epoch)
                made.on_epoch_end(epoch, dict(logs))
            made.on_train_end()
    except Exception as exc:  # a callback can fail in any way on its first epochs
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise KeyProblem(("callbacks", i), f"Keras rejected {spec.type}({shown}) on its "
                         f"first epochs: {type(exc).__name__}: {exc}") from None


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
        if self.one_batch and isinstance(x, RowStream):  # a few rows: read them once
            self.x = x.batch(np.arange(len(x)))
        elif is_stream(x):   # image files: decoded as Keras goes
            self.one_batch = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # test_on_batch skips building a dataset each epoch (evaluate costs ~70 ms)
        scores = (self.model.test_on_batch(self.x, self.y, return_dict=True) if self.one_batch
                  else self.model.evaluate(**self._rows(), verbose=0, return_dict=True))
        for key, value in scores.items():
            self.into.setdefault(f"heldout_{key}", []).append(float(value))

    def _rows(self) -> dict[str, Any]:
        if is_stream(self.x):  # read from files as it goes
            return scoring_input(self.x, self.y, self.batch_size)
        return {"x": self.x, "y": self.y, "batch_size": self.batch_size}


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

"""Callbacks: the user's (by Keras name, paths placed inside the run directory), the run's
own checkpoint and TensorBoard logs, and a Rich progress display on stderr."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kerastrain import _keras
from kerastrain.config.schema import Config, KerasObject
from kerastrain.errors import KeyProblem, did_you_mean
from kerastrain.models.build import create_object

# Callback arguments that name a file or folder, with the default placed in the run dir.
_PATH_ARGS = {"ModelCheckpoint": ("filepath", "checkpoints/checkpoint.keras"),
              "TensorBoard": ("log_dir", "logs"),
              "CSVLogger": ("filename", "callbacks_log.csv")}


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
            raise KeyProblem(("callbacks", i), "BackupAndRestore is already part of every "
                             "run: each fold backs up every epoch in its checkpoints/backup, "
                             "and `kerastrain resume RUN_DIR` continues from there. Remove "
                             "this callback.")


_STEERING_TYPES = {"earlystopping", "reducelronplateau", "modelcheckpoint"}


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


def user_callbacks(cfg: Config, out_dir: Path, skip: tuple[int, ...] = ()) -> list[Any]:
    """Fresh instances of the configured callbacks (but those in `skip`); relative paths
    land in `out_dir`."""
    made = []
    for i, spec in enumerate(cfg.callbacks):
        if i in skip:
            continue
        args = spec.args
        name = spec.type
        for class_name, (arg, default) in _PATH_ARGS.items():
            if name.lower() == class_name.lower():
                target = Path(args.get(arg, default))
                if not target.is_absolute():
                    target = out_dir / target
                target.parent.mkdir(parents=True, exist_ok=True)
                args[arg] = str(target)
        made.append(create_object("callbacks", KerasObject(type=name, **args), ("callbacks", i)))
    return made


_ONE_BATCH_ROWS = 4096


def held_out_curves(x: Any, y: Any, batch_size: int, into: dict[str, list[float]]) -> Any:
    """A callback scoring the fold's scored rows after every epoch, into `into` as
    `heldout_<metric>`. It never writes to the logs, so no other callback can steer on it."""
    keras = _keras.keras()

    one_batch = len(x) <= _ONE_BATCH_ROWS

    class HeldOutCurves(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            # test_on_batch skips building a dataset each epoch (evaluate costs ~70 ms)
            scores = (self.model.test_on_batch(x, y, return_dict=True) if one_batch else
                      self.model.evaluate(x, y, batch_size=batch_size, verbose=0,
                                          return_dict=True))
            for key, value in scores.items():
                into.setdefault(f"heldout_{key}", []).append(float(value))

    return HeldOutCurves()


def tensorboard_enabled(cfg: Config) -> bool:
    """TensorBoard logs need the tensorboard package, which TensorFlow no longer brings."""
    installed = importlib.util.find_spec("tensorboard") is not None
    if cfg.output.tensorboard is True and not installed:
        raise KeyProblem(("output", "tensorboard"), "TensorBoard logs need the tensorboard "
                         "package: pip install tensorboard, or set output.tensorboard: auto.")
    return bool(cfg.output.tensorboard) and installed


def run_callbacks(cfg: Config, out_dir: Path) -> list[Any]:
    """The run's own: the best model by val_loss in checkpoints/, TensorBoard in logs/."""
    keras = _keras.keras()
    made = []
    if cfg.output.checkpoints:
        (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        made.append(keras.callbacks.ModelCheckpoint(
            str(out_dir / "checkpoints" / "best.keras"), monitor="val_loss",
            save_best_only=True, verbose=0))
    if tensorboard_enabled(cfg):
        made.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / "logs")))
    return made


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def progress_display(console: Console) -> Progress:
    """The one Rich display of a run: a bar over folds and one per fold over its epochs."""
    return Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.description}"), console=console, transient=False)


def progress_callback(console: Console, epochs: int, label: str,
                      display: Progress | None = None, overall: Any = None) -> Any:
    """A Keras callback showing epochs and the latest logs: a live bar on a terminal,
    one line per epoch otherwise. With a shared `display` (started by the caller) the
    fold's bar joins it and the `overall` task advances when the fold ends."""
    keras = _keras.keras()

    class RichProgress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.live = console.is_terminal
            self.own = display is None
            self.progress = progress_display(console) if self.own else display
            self.task = None

        def on_train_begin(self, logs: dict | None = None) -> None:
            if self.live:
                if self.own:
                    self.progress.start()
                self.task = self.progress.add_task("", total=epochs, label=label)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            text = "  ".join(f"{k} {_fmt(float(v))}" for k, v in (logs or {}).items()
                             if k != "learning_rate")
            if self.live:
                self.progress.update(self.task, completed=epoch + 1, description=text)
            else:
                console.print(f"{label} epoch {epoch + 1}/{epochs}  {text}", highlight=False)

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.live:
                done = next(t.completed for t in self.progress.tasks if t.id == self.task)
                self.progress.update(self.task, total=done)
                if overall is not None:
                    self.progress.advance(overall)
                if self.own:
                    self.progress.stop()

    return RichProgress()

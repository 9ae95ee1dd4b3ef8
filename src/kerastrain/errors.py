"""User-facing errors: each says where (file, line, key path), what, and how to fix it.

Any `UserError` reaching the CLI becomes exit code 2 with its message and no traceback.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


def did_you_mean(given: object, choices: Iterable[str], n: int = 3) -> str:
    """A ' Did you mean ...?' suffix naming the closest choices, or ''."""
    if not isinstance(given, str):
        return ""
    # Where names differ only in case ('Accuracy', 'accuracy'), suggest the lower-case one.
    by_lower = {c.lower(): c for c in sorted(choices, key=lambda c: c.islower())}
    close = difflib.get_close_matches(given.lower(), list(by_lower), n=n, cutoff=0.6)
    if not close:
        return ""
    names = " or ".join(repr(by_lower[c]) for c in close)
    return f" Did you mean {names}?"


class UserError(Exception):
    """A mistake of the user's (config, data, arguments): exit code 2, no traceback.

    `option` names the argument of the library function (`force`, `data`, `overwrite`)
    that would get past it, so that a front end can say how in its own terms (the command
    line names its flag); the message itself names no front end."""

    exit_code = 2

    def __init__(self, message: str = "", option: str | None = None):
        super().__init__(message)
        self.option = option

    def __reduce__(self) -> tuple:  # travels from worker processes intact
        return type(self), (str(self), self.option)

    def render(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Issue:
    """One problem at one place of a config file (or of a --set override)."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None

    def render(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}  " if self.line else f"{self.file}  "
        text = f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"
        if self.hint:
            text += f"\n  {self.hint}"
        return text


class ConfigError(UserError):
    """One or more problems found in a config; all are reported together."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__(self.render())

    def __reduce__(self) -> tuple:
        return type(self), (self.issues,)

    def render(self) -> str:
        head = "" if len(self.issues) == 1 else f"{len(self.issues)} problems in the config:\n"
        return head + "\n".join(issue.render() for issue in self.issues)


class DataError(UserError):
    """A problem in a data file or data source: names the file, column and row."""


class TrainingDiverged(UserError):
    """The loss stopped being a finite number: the run fails, its earlier epochs kept."""


class RunDirError(UserError):
    """A run directory that is missing, incomplete or not a kerastrain run."""

    @classmethod
    def not_completed(cls, path: Path, info: dict) -> RunDirError:
        """A run used before it completed: what state it is in, and what to do about it."""
        status = info.get("status")
        if status == "running":
            return cls(f"{path}: the run is still running (started {info.get('started_at', '?')}"
                       "); wait for it to complete, or if its process died, continue it with "
                       "kerastrain resume.")
        error = str(info.get("error") or "")
        if status == "failed" and error.startswith(TrainingDiverged.__name__):
            what = error.removeprefix(f"{TrainingDiverged.__name__}: ").split(". ")[0]
            config = shlex.quote(str(Path(path) / "config.yaml"))
            return cls(f"{path}: the run failed ({what}): it has no final model, and resuming "
                       "cannot help, as it would go on at the same learning rate. Lower the "
                       "learning rate and fit again: kerastrain fit "
                       f"{config} --set compile.optimizer.learning_rate=...")
        why = f" ({error})" if status == "failed" and error else ""
        if status in ("interrupted", "failed"):
            return cls(f"{path}: the run is {status}{why}: its model is not final. Continue "
                       "it with kerastrain resume, then use it.")
        return cls(f"{path}: the run's status is {status!r}; only completed runs can be used.")


class KeyProblem(Exception):
    """A problem with one config key found after the schema stage (a Keras name, a split
    that cannot be made); turned into a `ConfigError` with the key's file and line."""

    def __init__(self, path: tuple, message: str, hint: str | None = None):
        super().__init__(message)
        self.path = tuple(path)
        self.message = message
        self.hint = hint


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run directory is kept, marked `interrupted`, and
    `kerastrain resume RUN_DIR` continues it."""

    def __init__(self, run_dir: str | Path):
        super().__init__(str(run_dir))
        self.run_dir = Path(run_dir)


class RunPruned(Exception):
    """A sweep's search stopped a trial early (its validation metric, after `epoch`
    epochs, was not promising): run.json says `pruned`, its files are kept. `run_dir` is
    set on the way out of training."""

    def __init__(self, epoch: int, metric: str, value: float):
        super().__init__(f"pruned after epoch {epoch}: {metric} {value:.4g}")
        self.epoch, self.metric, self.value = epoch, metric, value
        self.run_dir: str | None = None

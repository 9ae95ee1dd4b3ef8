"""One trial of a sweep, in whichever process runs it (this one, a worker of the pool, a
Ray task): `fit` with its overrides, or `resume` of its failed or interrupted run. Only
here is TensorFlow imported, inside `run_trial`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kerastrain.errors import RunPruned, UserError
from kerastrain.training.progress import Progress


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to run one trial: plain values only (it crosses processes)."""

    trial: str
    config: str
    sets: tuple[str, ...]
    overrides: dict[str, Any]
    sweep_dir: str
    resume_dir: str | None = None
    force: bool = False


def failure(exc: BaseException) -> dict[str, Any]:
    """run_trial's result for a trial that raised: the message a user can act on (or, for
    a trial its search pruned, the epoch it stopped after)."""
    if isinstance(exc, RunPruned):
        return {"status": "pruned", "run_dir": exc.run_dir, "epoch": exc.epoch}
    if isinstance(exc, UserError):
        return {"status": "failed", "error": exc.render()}
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


class TrialProgress(Progress):
    """A trial's events inside a sweep: its models labelled by the trial, its own begin and
    end dropped (the sweep draws one display)."""

    def __init__(self, trial: str, inner: Progress):
        self.trial, self.inner = trial, inner

    def fold_begin(self, label: str, epochs: int, done: int = 0) -> None:
        self.inner.fold_begin(f"{self.trial} {label}", epochs, done)

    def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        self.inner.epoch_end(f"{self.trial} {label}", epoch, epochs, logs)

    def fold_end(self, label: str) -> None:
        self.inner.fold_end(f"{self.trial} {label}")

    def warning(self, text: str) -> None:
        self.inner.warning(text)

    def note(self, text: str) -> None:
        self.inner.note(f"{self.trial}: {text}")


def run_trial(spec: TrialSpec, progress: Progress) -> dict[str, Any]:
    """One trial, in whichever process runs it: `fit` with its overrides (recorded in
    run.json with the sweep it belongs to), or `resume` of its failed or interrupted run.
    Returns {status, run_dir, metrics}, or when it fails {status, error}, or when its
    search pruned it {status, run_dir, epoch}."""
    from kerastrain.config import load_config
    from kerastrain.sweep.board import hparams_summary
    from kerastrain.training.fit import fit
    from kerastrain.training.resume import resume

    shown = TrialProgress(spec.trial, progress)
    try:
        if spec.resume_dir:
            command = ["kerastrain", "resume", spec.resume_dir, *(["--force"] * spec.force)]
            run, metrics = resume(spec.resume_dir, shown, command, force=spec.force)
        else:
            command = ["kerastrain", "fit", spec.config,
                       *(part for s in spec.sets for part in ("--set", s))]
            run, metrics = fit(load_config(spec.config, list(spec.sets)), shown, command,
                               overrides=spec.overrides,
                               sweep={"dir": spec.sweep_dir, "trial": spec.trial})
    except Exception as exc:
        ended = failure(exc)
        if ended["status"] == "pruned":
            hparams_summary(ended["run_dir"], spec.overrides, spec.trial)
        return ended
    hparams_summary(str(run.path), spec.overrides, spec.trial)
    return {"status": "completed", "run_dir": str(run.path), "metrics": metrics}

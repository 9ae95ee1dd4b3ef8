"""A lane of a search: one process that claims an attempt from the study, trains it
(reporting the validation metric after each epoch, so the pruner can stop it), tells the
study how it ended, rewrites manifest.csv, and claims the next, until every slot is
taken. `--jobs J` runs J lanes in worker processes; another `kerastrain sweep` process
on the same study (this machine or another) is just more lanes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from kerastrain.errors import RunPruned
from kerastrain.runs import metric_key
from kerastrain.sweep.manifest import Row, SweepDir, run_status, tagged_runs, trial_metric
from kerastrain.sweep.space import parsed
from kerastrain.sweep.study import (
    Claim,
    SearchSpec,
    claim,
    claiming,
    label,
    latest,
    open_study,
    spent_up,
)
from kerastrain.sweep.trial import TrialSpec, run_trial
from kerastrain.training.progress import Progress

_STATES = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned",
           TrialState.RUNNING: "running", TrialState.WAITING: "pending"}


@dataclass(frozen=True)
class Lane:
    """What a lane needs (plain values: it crosses to a worker process)."""

    search: SearchSpec
    config: str
    fixed: tuple[str, ...]
    sweep_dir: str
    runs_dir: str
    metric: str  # split.name
    one_core: bool  # folds one after another (trials side by side, or pruning)


class Reporting(Progress):
    """A trial's events on their way to the display; each epoch's validation metric of
    the first model it trains (the hold-out model, or the first fold of a cross-validation
    run) is reported to the trial, and the pruner asked whether to go on; a trial before
    its last epoch stops (pruned) when the search's trials have spent its `--budget`."""

    def __init__(self, inner: Progress, trial: Any, key: str, search: SearchSpec):
        self.inner, self.trial, self.key, self.search = inner, trial, key, search
        self.first: str | None = None
        self.epochs = 0

    def fold_begin(self, label: str, epochs: int, done: int = 0) -> None:
        self.first = self.first or label
        self.inner.fold_begin(label, epochs, done)

    def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        self.inner.epoch_end(label, epoch, epochs, logs)
        self.epochs += 1
        if label != self.first or self.key not in logs:
            return
        value = float(logs[self.key])
        self.trial.report(value, epoch)
        if self.search.prune != "none" and self.trial.should_prune():
            raise RunPruned(epoch, self.key, value)
        if self.search.budget is not None and epoch < epochs and spent_up(
                self.trial.study.get_trials(deepcopy=False), self.search):
            raise RunPruned(epoch, self.key, value)

    def fold_end(self, label: str) -> None:
        self.inner.fold_end(label)

    def warning(self, text: str) -> None:
        self.inner.warning(text)

    def note(self, text: str) -> None:
        self.inner.note(text)


def _log_key(metric: str) -> str:
    return f"val_{metric_key(metric)[1]}"


def _spec(lane: Lane, got: Claim) -> TrialSpec:
    """Fit the attempt's params; a retry resumes the slot's run when it has one."""
    trial = label(got.slot)
    run_dir = got.run_dir
    if got.attempt > 1 and not run_dir:
        run_dir = str(tagged_runs(Path(lane.runs_dir), Path(lane.sweep_dir)).get(trial) or "")
    status = run_status(run_dir) if run_dir else None
    resume = run_dir if status in ("failed", "interrupted", "running") else None
    sets = (*lane.fixed, *(f"{k}={v}" for k, v in got.overrides.items()))
    overrides = parsed(dict((s.partition("=")[0].strip(), s.partition("=")[2]) for s in sets))
    if lane.one_core and "runtime.workers" not in overrides:
        sets = (*sets, "runtime.workers=1")
    return TrialSpec(trial, lane.config, sets, overrides, lane.sweep_dir, resume,
                     status == "running")


def search_lane(lane: Lane, progress: Progress) -> int:
    """Claim, train and tell attempts until none is left; how many this lane ran."""
    study = open_study(lane.search)
    ran = 0
    while (got := claim(study, lane.search)) is not None:
        ran += 1
        spec = _spec(lane, got)
        trial = optuna.trial.Trial(study, got.trial_id)
        trial.set_user_attr("overrides", got.overrides)
        reporting = Reporting(progress, trial, _log_key(lane.metric), lane.search)
        try:
            result = run_trial(spec, reporting)
        except KeyboardInterrupt as exc:
            _tell(study, lane, got, {"status": "interrupted",
                                     "run_dir": str(getattr(exc, "run_dir", "") or "")},
                  reporting.epochs, spec)
            raise
        ended = _tell(study, lane, got, result, reporting.epochs, spec)
        progress.trial_end(ended)
    return ran


def _tell(study: Any, lane: Lane, got: Claim, result: dict[str, Any], epochs: int,
          spec: TrialSpec) -> str:
    """Record how the attempt ended (in the study and manifest.csv); a line saying so."""
    trial = label(got.slot)
    status = result["status"]
    run_dir = result.get("run_dir") or spec.resume_dir or str(
        tagged_runs(Path(lane.runs_dir), Path(lane.sweep_dir)).get(trial) or "")
    value, ci95 = trial_metric(run_dir, lane.metric) if status == "completed" else (None, None)
    error = result.get("error") or ""
    if status == "completed" and value is None:
        status, error = "failed", f"the run logged no {lane.metric}"
    attrs = {"status": status, "run_dir": run_dir, "epochs": epochs, "ci95": ci95,
             "error": error, "action": "resumed" if spec.resume_dir else "trained",
             "pruned_at": result.get("epoch")}
    with claiming(lane.search):
        running = optuna.trial.Trial(study, got.trial_id)
        for key, item in attrs.items():
            running.set_user_attr(key, item)
        state = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(
            status, TrialState.FAIL)
        study.tell(got.number, value if state == TrialState.COMPLETE else None, state=state)
        write_manifest(study, lane.sweep_dir, lane.metric)
    text = f"{trial} {status}" + (" (resumed)" if spec.resume_dir else "")
    if status == "pruned":
        text += f" after epoch {result.get('epoch')}"
    if value is not None:
        text += f": {value:.4g}"
    return text + (f": {error.splitlines()[0]}" if error else "")


def rows(study: Any) -> list[Row]:
    """The manifest's rows: each slot's last attempt, by slot."""
    made = []
    for slot, frozen in sorted(latest(study).items()):
        attrs = frozen.user_attrs
        status = _STATES.get(frozen.state) or attrs.get("status") or "failed"
        value = frozen.value if frozen.state == TrialState.COMPLETE else None
        overrides = attrs.get("overrides") or {k: str(v) for k, v in frozen.params.items()}
        made.append(Row(label(slot), dict(overrides), status, attrs.get("action") or "",
                        attrs.get("run_dir") or "", value, attrs.get("ci95"),
                        attrs.get("error") or ""))
    return made


def write_manifest(study: Any, sweep_dir: str, metric: str) -> list[Row]:
    made = rows(study)
    SweepDir(Path(sweep_dir)).write_rows(made, metric)
    return made

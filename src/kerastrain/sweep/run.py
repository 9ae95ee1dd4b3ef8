"""Running a sweep: `plan` checks every argument and every trial's config (the schema stage,
no TensorFlow) before anything trains; `execute` then skips the trials completed by an
earlier run of the same command, resumes the failed or interrupted ones in their own run
directories, trains the rest (in this process, in worker processes, or on Ray) and keeps
manifest.csv current as each trial ends."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastrain.compare import metric_direction
from kerastrain.config import load_config
from kerastrain.errors import ConfigError, UserError
from kerastrain.rundir import RunDir, read_json
from kerastrain.runs import metric_key
from kerastrain.sweep.manifest import (
    Row,
    SweepDir,
    check_metric,
    definition_id,
    file_sha256,
    tagged_runs,
    trial_metric,
)
from kerastrain.sweep.on_ray import run_on_ray
from kerastrain.sweep.space import SweepError, Trial, make_trials, parsed
from kerastrain.sweep.trial import TrialSpec, failure, run_trial
from kerastrain.training.pool import run_in_workers
from kerastrain.training.progress import Progress

EXECUTORS = ("local", "ray")


@dataclass
class Sweep:
    """A checked sweep: its directory, its trials (as manifest rows, with what an earlier
    run of the same command left) and what sweep.json records."""

    config: Path
    fixed: list[str]
    dir: SweepDir
    rows: list[Row]
    metric: str
    record: dict[str, Any]
    runs_dirs: dict[str, Path]
    seen_before: bool


def _sets(trial: Trial) -> list[str]:
    return [f"{k}={v}" for k, v in trial.items()]


def plan(config: Path, fixed: list[str], grid: list[str], random: int, params: list[str],
         seed: int | None = None, metric: str = "val_loss", sweep_dir: Path | None = None,
         executor: str = "local", address: str | None = None, jobs: int = 1,
         command: list[str] | None = None) -> Sweep:
    """Every check a sweep makes before training: its arguments, then each trial's config
    with its overrides. The sweep directory is found (or named) but not written."""
    if executor not in EXECUTORS:
        raise SweepError(f"--executor {executor!r}: use local or ray.")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise SweepError("--executor ray needs Ray: pip install 'kerastrain[ray]'")
    if address and executor != "ray":
        raise SweepError("--address is the Ray cluster's address: give it with --executor ray.")
    if jobs < 1:
        raise SweepError(f"--jobs {jobs}: give 1 or more trials to run side by side.")
    given, metric = metric, ".".join(metric_key(metric))
    config = Path(config).absolute()
    base = load_config(config, fixed)
    definition = {"config": str(config), "config_sha256": file_sha256(config),
                  "set": list(fixed), "grid": list(grid), "random": random,
                  "params": list(params), "seed": seed}
    sid = definition_id(definition)
    runs_dir = Path(base.config.output.runs_dir).absolute()
    where = SweepDir(Path(sweep_dir).absolute() if sweep_dir else
                     runs_dir / "sweeps" / f"{base.config.name}-{sid}")
    blocked = next((p for p in (where.path, *where.path.parents)
                    if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise SweepError(f"the sweep directory {where.path} cannot be made: {blocked} is a "
                         "file. Give another --sweep-dir.")
    recorded = where.recorded()
    if recorded is not None and recorded.get("id") != sid:
        raise SweepError(f"{where.path} holds another sweep (its sweep.json records "
                         f"{recorded.get('command')}); give another --sweep-dir, or leave it "
                         "out to use this sweep's own directory.")
    if seed is None and random:  # drawn once, then kept: the same command, the same draws
        seed = recorded.get("seed") if recorded else None
        seed = secrets.randbelow(2**31) if seed is None else seed
    trials = make_trials(grid, random, params, seed or 0, fixed)
    width = max(3, len(str(len(trials))))
    ids = [f"t{i + 1:0{width}d}" for i in range(len(trials))]
    runs_dirs, configs = {}, []
    for trial_id, trial in zip(ids, trials, strict=True):
        try:
            loaded = load_config(config, [*fixed, *_sets(trial)])
        except ConfigError as exc:
            raise SweepError(f"trial {trial_id} ({' '.join(_sets(trial))}): "
                             f"{exc.render()}") from None
        runs_dirs[trial_id] = Path(loaded.config.output.runs_dir).absolute()
        configs.append(loaded.config)
    check_metric(given, configs)
    earlier = where.read_rows()
    rows = []
    for trial_id, trial in zip(ids, trials, strict=True):
        row = earlier.get(trial_id)
        rows.append(Row(trial_id, trial, row.status, "", row.run_dir) if row is not None
                    and row.overrides == trial else Row(trial_id, trial))
    record = {"id": sid, "definition": definition, "seed": seed, "command": command or [],
              "config": str(config), "set": list(fixed), "grid": list(grid),
              "random": random, "params": list(params), "metric": metric, "jobs": jobs,
              "executor": executor, "address": address, "runs_dir": str(runs_dir),
              "trials": [{"trial": r.trial, "overrides": r.overrides} for r in rows]}
    return Sweep(config, list(fixed), where, rows, metric, record, runs_dirs,
                 recorded is not None)


def _status(run_dir: str) -> str | None:
    info_file = RunDir(Path(run_dir)).info_file
    try:
        return read_json(info_file).get("status") if run_dir and info_file.is_file() else None
    except UserError:
        return None


def _find_runs(sweep: Sweep, rows: list[Row]) -> None:
    """Name each row's run directory when the manifest lacks it (a killed sweep)."""
    missing = [r for r in rows if not r.run_dir]
    for runs_dir in {sweep.runs_dirs[r.trial] for r in missing}:
        found = tagged_runs(runs_dir, sweep.dir.path)
        for row in missing:
            if sweep.runs_dirs[row.trial] == runs_dir and row.trial in found:
                row.run_dir = str(found[row.trial])


def _spec(sweep: Sweep, row: Row, side_by_side: bool) -> TrialSpec:
    """How to run a trial: resume its run if it failed or was interrupted, else fit. Trials
    side by side already share the cores, so their folds train one after another
    (`runtime.workers=1`, unless the sweep sets it)."""
    status = _status(row.run_dir)
    resume_dir = row.run_dir if status in ("failed", "interrupted", "running") else None
    sets = (*sweep.fixed, *_sets(row.overrides))
    overrides = parsed(dict((s.partition("=")[0].strip(), s.partition("=")[2]) for s in sets))
    if side_by_side and "runtime.workers" not in overrides:
        sets = (*sets, "runtime.workers=1")
    return TrialSpec(row.trial, str(sweep.config), sets, overrides, str(sweep.dir.path),
                     resume_dir, status == "running")


def _finish(sweep: Sweep, row: Row, value: dict[str, Any]) -> None:
    row.status = value["status"]
    row.run_dir = value.get("run_dir") or row.run_dir
    if not row.run_dir:
        _find_runs(sweep, [row])
    row.error = value.get("error") or ""
    row.value, row.ci95 = trial_metric(row.run_dir, sweep.metric) if row.run_dir and \
        row.status == "completed" else (None, None)


def execute(sweep: Sweep, jobs: int = 1, fail_fast: bool = False, executor: str = "local",
            address: str | None = None, progress: Progress | None = None) -> Iterator[Row]:
    """Run the sweep's trials, yielding each row as its trial ends (skipped ones first).
    Ctrl-C records the trials in flight as interrupted and raises KeyboardInterrupt."""
    progress = progress or Progress()
    sweep.dir.path.mkdir(parents=True, exist_ok=True)
    sweep.dir.write_definition(sweep.record)
    if sweep.seen_before:
        _find_runs(sweep, sweep.rows)
    to_run: list[tuple[Row, TrialSpec]] = []
    skipped = []
    for row in sweep.rows:
        if _status(row.run_dir) == "completed":
            _finish(sweep, row, {"status": "completed"})
            row.action = "skipped"
            skipped.append(row)
        else:
            row.status, row.action, row.error = "pending", "", ""
            to_run.append((row, _spec(sweep, row, jobs > 1 or executor == "ray")))
    sweep.dir.write_rows(sweep.rows, sweep.metric)
    yield from skipped
    if not to_run:
        return
    outcomes = _outcomes([spec for _, spec in to_run], jobs, executor, address, progress)
    ended: set[int] = set()
    try:
        for index, value in outcomes:
            row, spec = to_run[index]
            _finish(sweep, row, value)
            row.action = "resumed" if spec.resume_dir else "trained"
            ended.add(index)
            sweep.dir.write_rows(sweep.rows, sweep.metric)
            yield row
            if fail_fast and row.status != "completed":
                break
    except GeneratorExit:
        raise
    except BaseException:  # Ctrl-C, or a worker lost: keep what is known
        _interrupted(sweep, [r for i, (r, _) in enumerate(to_run) if i not in ended])
        raise
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    if len(ended) < len(to_run):  # --fail-fast: the trials in flight were interrupted
        _interrupted(sweep, [r for i, (r, _) in enumerate(to_run) if i not in ended])


def _interrupted(sweep: Sweep, rows: list[Row]) -> None:
    """After Ctrl-C: the trials that had started (their run.json names the sweep) are
    `interrupted`, and a rerun resumes them."""
    _find_runs(sweep, rows)
    for row in rows:
        status = _status(row.run_dir)
        if status is not None:
            row.status = "interrupted" if status == "running" else status
    sweep.dir.write_rows(sweep.rows, sweep.metric)


def _outcomes(specs: list[TrialSpec], jobs: int, executor: str, address: str | None,
              progress: Progress) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, run_trial's result) for each trial as it ends."""
    if executor == "ray":
        yield from run_on_ray(specs, jobs, address)
        return
    for outcome in run_in_workers(run_trial, specs, min(jobs, len(specs)), progress):
        yield outcome.index, (outcome.value if outcome.error is None
                              else failure(outcome.error))


def rank(rows: list[Row], metric: str) -> tuple[list[Row], str]:
    """Completed trials best first by the metric, then completed ones without it, then
    pruned ones (best first where they have a value), then the rest (failed,
    interrupted, pending), whatever value a run that did not complete may hold; and which
    way is better."""
    direction, _ = metric_direction(metric_key(metric)[1])
    sign = 1.0 if direction == "lower" else -1.0

    def order(row: Row) -> tuple[int, int, float]:
        group = {"completed": 0, "pruned": 1}.get(row.status, 2)
        scored = row.value is not None and group < 2
        return group, 0 if scored else 1, sign * row.value if scored else 0.0

    return sorted(rows, key=order), direction

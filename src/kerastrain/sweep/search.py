"""`kerastrain sweep --search tpe|random --trials N --param ...`: checking a search before
anything trains (`plan_search`: its arguments, and the config at every bound and choice
of every param), then running it (`execute_search`): lanes in this process or in worker
processes claim the study's trials until every slot is taken. A worker that dies fails
its attempt, which a later lane (a new round of workers, if need be) retries. Optuna is
imported only here and below (study.py, lane.py)."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kerastrain.compare import metric_direction
from kerastrain.config import load_config
from kerastrain.errors import ConfigError
from kerastrain.runs import metric_key
from kerastrain.sweep.manifest import Row, SweepDir, definition_id, file_sha256
from kerastrain.sweep.on_ray import run_on_ray
from kerastrain.sweep.space import Param, SweepError, parse_param, yaml_float
from kerastrain.sweep.verdict import PLOT_FILE, curve, importances, plot, winner
from kerastrain.training.progress import Progress

SEARCHES = ("random", "tpe")
PRUNERS = ("none", "median", "hyperband")
STUDY_FILE = "study.db"
FACTOR = 4  # Hyperband's default reduction factor (Ray Tune ASHA's)


@dataclass
class SearchSweep:
    """A checked search: its directory, study, and (after `execute_search`) its rows."""

    config: Path
    fixed: list[str]
    dir: SweepDir
    metric: str
    record: dict[str, Any]
    spec: Any  # study.SearchSpec
    runs_dir: Path
    jobs: int
    executor: str = "local"
    address: str | None = None
    rows: list[Row] = field(default_factory=list)


def _corners(params: list[Param]) -> list[dict[str, str]]:
    """Every param at each bound (each choice), the others at their first: the configs
    a search may train, checked before it starts."""
    def texts(p: Param) -> list[str]:
        if p.kind == "choice":
            return list(p.args)
        if p.kind == "int":
            return [str(int(a)) for a in p.args]
        return [yaml_float(float(a)) for a in p.args]

    first = {p.key: texts(p)[0] for p in params}
    return [{**first, p.key: text} for p in params for text in texts(p)]


def tuning(search: str, prune: str, epochs: int, trials: int, min_epochs: int | None,
           factor: int | None, startup: int | None) -> dict[str, int]:
    """The pruner's and TPE's settings: those given (checked), the others' defaults."""
    if (min_epochs is not None or factor is not None) and prune == "none":
        raise SweepError("--min-epochs and --reduction-factor are --prune's: give --prune "
                         "median or hyperband.")
    if factor is not None and prune != "hyperband":
        raise SweepError("--reduction-factor is Hyperband's: give --prune hyperband.")
    if startup is not None and search != "tpe":
        raise SweepError("--startup-trials is TPE's: give --search tpe.")
    factor = FACTOR if factor is None else factor
    if factor < 2:
        raise SweepError(f"--reduction-factor {factor}: give 2 or more.")
    if min_epochs is None:  # Hyperband: rungs at min, min*F, min*F^2 ~ epochs
        min_epochs = max(1, epochs // factor**2 if prune == "hyperband" else epochs // 5)
    if not 1 <= min_epochs <= epochs:
        raise SweepError(f"--min-epochs {min_epochs}: give 1 to the config's training.epochs "
                         f"({epochs}).")
    startup = max(2, min(10, trials // 3)) if startup is None else startup
    if startup < 0:
        raise SweepError(f"--startup-trials {startup}: give 0 or more.")
    return {"min_epochs": min_epochs, "factor": factor, "startup": startup}


def plan_search(config: Path, fixed: list[str], params: list[str], search: str,
                trials: int, seed: int | None = None, metric: str = "val_loss",
                sweep_dir: Path | None = None, storage: str | None = None,
                prune: str = "none", jobs: int = 1, command: list[str] | None = None,
                executor: str = "local", address: str | None = None,
                min_epochs: int | None = None, factor: int | None = None,
                startup: int | None = None, budget: int | None = None) -> SearchSweep:
    """Every check before a search trains; the sweep directory is named, not written.
    `min_epochs`, `factor`, `startup`: the pruner's and TPE's settings (`tuning`);
    `budget`: the epochs its trials may spend in all (not part of its definition, as
    `trials`: a rerun with a larger one continues the study)."""
    if search not in SEARCHES:
        raise SweepError(f"--search {search!r}: use grid, random or tpe.")
    if prune not in PRUNERS:
        raise SweepError(f"--prune {prune!r}: use none, median or hyperband.")
    if trials < 1:
        raise SweepError(f"--search {search} needs --trials N, the number of trials (1 or "
                         "more).")
    if jobs < 1:
        raise SweepError(f"--jobs {jobs}: give 1 or more trials to run side by side.")
    if budget is not None and budget < 1:
        raise SweepError(f"--budget {budget}: give the epochs the search may spend, 1 or "
                         "more.")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise SweepError("--executor ray needs Ray: pip install 'kerastrain[ray]'")
    if address and executor != "ray":
        raise SweepError("--address is the Ray cluster's address: give it with --executor ray.")
    drawn = [parse_param(t) for t in params]
    if not drawn:
        raise SweepError(f"--search {search} needs at least one --param KEY=DIST to search.")
    keys = [p.key for p in drawn] + [t.partition("=")[0].strip() for t in fixed]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SweepError(f"{twice[0]} is given twice (--set and --param, or two --param); a "
                         "key is either fixed or searched.")
    split, name = metric_key(metric)
    metric = f"{split}.{name}"
    if prune != "none" and split != "validation":
        raise SweepError(f"--prune follows the validation metric after each epoch; --metric "
                         f"{metric} is not one (use val_loss, validation.accuracy, ...).")
    config = Path(config).absolute()
    base = load_config(config, fixed)
    for corner in _corners(drawn):
        sets = [f"{k}={v}" for k, v in corner.items()]
        try:
            load_config(config, [*fixed, *sets])
        except ConfigError as exc:
            raise SweepError(f"the search space at {' '.join(sets)}: {exc.render()}") from None
    tuned = tuning(search, prune, int(base.config.training.epochs), trials, min_epochs,
                   factor, startup)
    definition = {"config": str(config), "config_sha256": file_sha256(config),
                  "set": list(fixed), "params": list(params), "search": search,
                  "prune": prune, "metric": metric, "seed": seed,
                  **{k: v for k, v in (("min_epochs", min_epochs), ("factor", factor),
                                       ("startup", startup)) if v is not None}}
    sid = definition_id(definition)
    runs_dir = Path(base.config.output.runs_dir).absolute()
    where = SweepDir(Path(sweep_dir).absolute() if sweep_dir else
                     runs_dir / "sweeps" / f"{base.config.name}-{sid}")
    recorded = where.recorded()
    if recorded is not None and recorded.get("id") != sid:
        raise SweepError(f"{where.path} holds another sweep (its sweep.json records "
                         f"{recorded.get('command')}); give another --sweep-dir, or leave it "
                         "out to use this sweep's own directory.")
    if seed is None:  # drawn once, then kept (the study keeps the first process's)
        seed = recorded.get("seed") if recorded else None
        seed = secrets.randbelow(2**31) if seed is None else seed
    from kerastrain.sweep.study import SearchSpec, lock_file

    storage = storage or f"sqlite:///{where.path / STUDY_FILE}"
    direction = "minimize" if metric_direction(name)[0] == "lower" else "maximize"
    spec = SearchSpec(storage, f"{base.config.name}-{sid}", tuple(drawn), search, prune,
                      int(seed), trials, direction, int(base.config.training.epochs),
                      lock_file(storage), **tuned, budget=budget)
    record = {"id": sid, "definition": definition, "seed": seed, "command": command or [],
              "config": str(config), "set": list(fixed), "params": list(params),
              "search": search, "trials": trials, "budget": budget, "prune": prune,
              "tuning": tuned,
              "metric": metric,
              "direction": direction, "storage": storage, "study": spec.study, "jobs": jobs,
              "executor": executor, "address": address, "runs_dir": str(runs_dir)}
    return SearchSweep(config, list(fixed), where, metric, record, spec, runs_dir, jobs,
                       executor, address)


def _lanes(lane: Any, sweep: SearchSweep, progress: Progress) -> Iterator[tuple[Any, int]]:
    """(error, attempts run) of each lane as it ends: in worker processes here, or as Ray
    tasks (a Ray task's error comes as its message)."""
    from kerastrain.sweep.lane import search_lane
    from kerastrain.training.pool import run_in_workers

    if sweep.executor == "ray":
        for _, value in run_on_ray([lane] * sweep.jobs, sweep.jobs, sweep.address,
                                   search_lane):
            yield (value["error"], 0) if isinstance(value, dict) else (None, value)
        return
    for outcome in run_in_workers(search_lane, [lane] * sweep.jobs, sweep.jobs, progress):
        yield outcome.error, outcome.value


def execute_search(sweep: SearchSweep, progress: Progress | None = None) -> list[Row]:
    """Run the search until its study has `--trials` slots, each completed, pruned or
    failed (a failed or interrupted one left by an earlier command is retried first).
    Returns the manifest's rows; Ctrl-C raises KeyboardInterrupt, every told trial kept."""
    from kerastrain.sweep.lane import Lane, write_manifest
    from kerastrain.sweep.run import rank
    from kerastrain.sweep.study import (
        claiming,
        open_study,
        reap,
        retry_failed,
        study_seed,
        work_left,
    )
    from kerastrain.training.pool import WorkerDied

    progress = progress or Progress()
    sweep.dir.path.mkdir(parents=True, exist_ok=True)
    spec = replace(sweep.spec, seed=study_seed(sweep.spec))
    sweep.spec, sweep.record["seed"] = spec, spec.seed
    sweep.dir.write_definition(sweep.record)
    study = open_study(spec)
    with claiming(spec):
        reap(study)
        retry_failed(study)
    lane = Lane(spec, str(sweep.config), tuple(sweep.fixed), str(sweep.dir.path),
                str(sweep.runs_dir), sweep.metric, sweep.jobs > 1 or spec.prune != "none")
    while work_left(study, spec):  # a round of lanes; another only when a worker died
        ran = 0
        for error, value in _lanes(lane, sweep, progress):
            if isinstance(error, (WorkerDied, str)):
                progress.warning(f"a search lane ended without reporting: {error}")
                ran += 1
            elif error is not None:
                raise error
            else:
                ran += value
        if not ran:
            break
    with claiming(spec):
        sweep.rows = write_manifest(study, str(sweep.dir.path), sweep.metric)
    points = curve(study)
    plot(points, sweep.metric, sweep.dir.path / PLOT_FILE)
    sweep.record.update(importances=importances(study),
                        winner=winner(rank(sweep.rows, sweep.metric)[0], sweep.metric),
                        epochs_spent=points[-1]["spent"] if points else 0, curve=points)
    sweep.dir.write_definition(sweep.record)
    return sweep.rows

"""`resume`: continue an interrupted (or failed) run in its own run directory, from its
own resolved config.yaml. Finished folds are kept as they are; the fold that was
training continues from its last completed epoch (see `training/backup.py`)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from kerastrain.config import LoadedConfig, load_config
from kerastrain.errors import RunDirError
from kerastrain.rundir import RunDir, now, read_json
from kerastrain.training.backup import backup_epoch
from kerastrain.training.check import Checked, check
from kerastrain.training.fit import train_run
from kerastrain.training.pool import WorkerPool, fold_pool
from kerastrain.training.progress import Progress

RESUMABLE = ("interrupted", "failed")


def _a_run(run_dir: str | Path) -> RunDir:
    run = RunDir(Path(run_dir))
    if not run.info_file.is_file() or not run.config.is_file():
        raise RunDirError(f"{run.path}: not a kerastrain run directory (no run.json and "
                          "config.yaml).")
    return run


def open_resumable(run_dir: str | Path, force: bool = False) -> tuple[RunDir, dict[str, Any]]:
    """The run directory and its run.json, if its status lets it be resumed."""
    run = _a_run(run_dir)
    path = run.path
    info = run.info()
    status = info.get("status")
    if status == "completed":
        raise RunDirError(f"{path}: the run is completed; there is nothing to resume. To "
                          "train it again, start a new run from its config: kerastrain fit "
                          f"{shlex.quote(str(run.config))}")
    if status == "running" and not force:
        raise RunDirError(f"{path}: the run is marked 'running': another kerastrain may be "
                          "training it now. If its process died without recording it (killed, "
                          "out of memory, a lost machine), resume it forcibly.", option="force")
    if status not in (*RESUMABLE, "running"):
        raise RunDirError(f"{path}: run.json has status {status!r}; only "
                          f"{' or '.join(RESUMABLE)} runs can be resumed.")
    return run, info


def _check_same_data(checked: Checked, run: RunDir, info: dict[str, Any]) -> None:
    """Resuming on other rows would mix two experiments in one run directory."""
    experiment = checked.experiment
    recorded = info.get("data_sha256")
    if recorded is not None and recorded != checked.fingerprint:
        raise RunDirError(f"{run.path}: the data changed since the run started (its "
                          "fingerprint differs from run.json's data_sha256); resuming would "
                          "train on other rows. Start a new run with kerastrain fit.")
    if run.splits.is_file():
        planned, recorded_plan = experiment.plan.to_json(), read_json(run.splits)
        if any(json.loads(json.dumps(planned[k])) != recorded_plan.get(k)
               for k in ("test", "folds")):
            raise RunDirError(f"{run.path}: the splits made now differ from splits.json; "
                              "resuming would train folds on other rows. Start a new run "
                              "with kerastrain fit.")


def resume_point(checked: Checked, run: RunDir, progress: Progress) -> dict[str, Any]:
    """Where training continues: the first unfinished fold (or `refit`), and how many of
    its epochs the backup holds (a missing backup said: it starts from epoch 0). An
    unfinished fold's unreadable backup is refused rather than silently trained over."""
    cfg = checked.experiment.loaded.config
    if not cfg.validation.cross_validated:
        places = [(checked.experiment.plan.folds[0].name, run)]
    else:
        places = [(f.name, run.fold(f.name)) for f in checked.experiment.plan.folds]
        if cfg.validation.refit:
            places.append(("refit", run))
    unfinished = [(name, place) for name, place in places if not place.trained]
    for name, place in unfinished:
        if place.backup_file.exists() and backup_epoch(place) is None:
            raise RunDirError(f"{place.backup_file}: the backup of {name} is unreadable "
                              "(truncated or damaged), so its finished epochs cannot be "
                              f"continued. To train {name} again from epoch 0, delete that "
                              "file and resume again.")
    if not unfinished:
        return {"fold": None, "epochs_done": None}
    name, place = unfinished[0]
    done = backup_epoch(place)
    if done is None:
        progress.warning(f"{name} has no backup ({place.backup_file}): none of its epochs "
                         "had been saved, so it trains from epoch 0.")
    return {"fold": name, "epochs_done": done or 0}


def resume(run_dir: str | Path, progress: Progress | None = None,
           command: list[str] | None = None,
           force: bool = False,
           pool: WorkerPool | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Re-check the run's own config and data, then continue training in the same run
    directory. Returns it and the final metrics, as `fit` does. `force` resumes a run
    still marked running (its process died without recording it). `pool`: as `fit`'s."""
    progress = progress or Progress()
    run = _a_run(run_dir)  # before the lock: nothing is written into a folder that is no run
    loaded = load_config(run.config)
    lanes = nullcontext(pool) if pool is not None else fold_pool(loaded.config)
    with lanes as pool, run.lock():
        run, info = open_resumable(run_dir, force)
        return run, _resume(run, info, loaded, progress, command, pool)


def _resume(run: RunDir, info: dict[str, Any], loaded: LoadedConfig, progress: Progress,
            command: list[str] | None, pool: WorkerPool) -> dict[str, Any]:
    checked = check(loaded, hash_ahead=True)
    _check_same_data(checked, run, info)
    where = resume_point(checked, run, progress)
    for warning in checked.summary["warnings"]:
        progress.warning(warning)
    place = ("writing the final files" if where["fold"] is None else
             f"{where['fold']} after epoch {where['epochs_done']}")
    progress.note(f"resuming {run.path} ({info.get('status')}): {place}")
    started = time.time()
    resumes = [*info.get("resumes", []),
               {"at": now(), "was": info.get("status"), **where,
                "command": command or sys.argv}]
    run.update_info(drop=("error", "finished_at"), status="running", resumes=resumes)
    return train_run(checked, run, progress, started, float(info.get("duration_s") or 0),
                     pool)

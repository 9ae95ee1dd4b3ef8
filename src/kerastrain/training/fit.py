"""`fit`: every check first (`check.py`), then a new run directory trained under the
configured scheme (`schemes.py`), with run.json saying how it ended."""

from __future__ import annotations

import platform
import sys
import time
from contextlib import nullcontext
from typing import Any

import numpy as np

from kerastrain import __version__, _keras
from kerastrain.config import LoadedConfig
from kerastrain.errors import RunInterrupted, RunPruned
from kerastrain.rundir import RunDir, atomic_path, now
from kerastrain.training import reuse
from kerastrain.training.callbacks import tensorboard_status
from kerastrain.training.check import Checked, check
from kerastrain.training.pool import WorkerPool, fold_pool
from kerastrain.training.progress import Progress
from kerastrain.training.schemes import cross_validate, holdout, models_to_train


def versions() -> dict[str, str]:
    """The versions a run was made with, for run.json."""
    import sklearn

    keras = _keras.keras()
    return {"kerastrain": __version__, "python": platform.python_version(),
            "tensorflow": _keras.tf().__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "platform": platform.platform()}


def fit(loaded: LoadedConfig, progress: Progress | None = None,
        command: list[str] | None = None, overrides: dict[str, Any] | None = None,
        sweep: dict[str, Any] | None = None,
        pool: WorkerPool | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Check everything, then train into a new run directory. Returns it and the metrics.
    Recorded in run.json: `command` (default: this process's `sys.argv`), `overrides`
    (the `--set` values, by key) and `sweep` (the sweep directory and trial it belongs to).
    `pool`: the run's `fold_pool`, when the caller opened it before loading TensorFlow."""
    progress = progress or Progress()
    with nullcontext(pool) if pool is not None else fold_pool(loaded.config) as pool:
        checked = check(loaded, hash_ahead=True)
        run = RunDir.create(loaded.config.output.runs_dir, loaded.config.name)
        with run.lock():
            started = time.time()
            warnings = record_start(checked, run, command, {
                **({"overrides": overrides} if overrides else {}),
                **({"sweep": sweep} if sweep else {})})
            for warning in warnings:
                progress.warning(warning)
            return run, train_run(checked, run, progress, started, pool=pool)


def record_start(checked: Checked, run: RunDir, command: list[str] | None,
                 extra: dict[str, Any] | None = None) -> list[str]:
    """The config, run.json (`running`, with the fields in `extra`) and the splits,
    before any training. Returns the warnings recorded, for the terminal."""
    experiment = checked.experiment
    cfg = experiment.loaded.config
    loaded = experiment.loaded
    warnings = list(checked.summary["warnings"])  # no TensorBoard with `auto` is no warning:
    # run.json's `tensorboard` says why there are no logs
    run.write_config(cfg.resolved())
    run.update_info(status="running", started_at=now(), command=command or sys.argv,
                    config_file=str(loaded.path), seed=cfg.seed, versions=versions(),
                    strategy=checked.strategy.name, devices=checked.strategy.devices,
                    dtype_policy=checked.dtype_policy, task=experiment.task,
                    data=checked.summary,
                    data_sha256=checked.fingerprint,
                    warnings=warnings,
                    leakage=checked.leakage.to_json() if checked.leakage else "not checked",
                    tensorboard=tensorboard_status(cfg.output), **(extra or {}))
    with atomic_path(run.splits) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.writelines(experiment.plan.json_pieces())
    return warnings


def train_run(checked: Checked, run: RunDir, progress: Progress, started: float,
              earlier_s: float = 0.0, pool: WorkerPool | None = None) -> dict[str, Any]:
    """Train under the run's scheme, recording in run.json how it ended (`duration_s`
    adds `earlier_s`, the time of the sessions before a resume). Ctrl-C becomes
    `RunInterrupted`, which names the run to resume."""
    def ended(**fields: Any) -> None:
        run.update_info(finished_at=now(),
                        duration_s=round(earlier_s + time.time() - started, 3), **fields)

    scheme = (cross_validate if checked.experiment.loaded.config.validation.cross_validated
              else holdout)
    progress.begin(models_to_train(checked))
    try:
        metrics = scheme(checked, run, progress, pool or WorkerPool(1))
    except KeyboardInterrupt:
        ended(status="interrupted")
        raise RunInterrupted(run.path) from None
    except RunPruned as exc:  # a sweep's search stopped it: its files stay
        ended(status="pruned", pruned={"epoch": exc.epoch, "metric": exc.metric,
                                       "value": exc.value})
        exc.run_dir = str(run.path)
        raise
    except BaseException as exc:
        ended(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        progress.end()
        reuse.forget()  # the run's traced model goes with the run
    ended(status="completed")
    return metrics

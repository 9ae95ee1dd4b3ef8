"""`fit`: every check first (`check.py`), then a new run directory trained under the
configured scheme (`schemes.py`), with run.json saying how it ended."""

from __future__ import annotations

import platform
import sys
import time
from typing import Any

import numpy as np

from kerastrain import __version__, _keras
from kerastrain.config import LoadedConfig
from kerastrain.errors import RunInterrupted
from kerastrain.rundir import RunDir, now, write_json
from kerastrain.training.callbacks import tensorboard_installed, tensorboard_status
from kerastrain.training.check import Checked, check
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
        sweep: dict[str, Any] | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Check everything, then train into a new run directory. Returns it and the metrics.
    Recorded in run.json: `command` (default: this process's `sys.argv`), `overrides`
    (the `--set` values, by key) and `sweep` (the sweep directory and trial it belongs to)."""
    progress = progress or Progress()
    checked = check(loaded)
    experiment = checked.experiment
    cfg = loaded.config
    run = RunDir.create(cfg.output.runs_dir, cfg.name)
    started = time.time()
    run.write_config(cfg.resolved())
    run.update_info(status="running", started_at=now(), command=command or sys.argv,
                    config_file=str(loaded.path), seed=cfg.seed, versions=versions(),
                    strategy=checked.strategy.name, devices=checked.strategy.devices,
                    task=experiment.task, data=checked.summary,
                    data_sha256=checked.fingerprint,
                    warnings=checked.summary["warnings"],
                    leakage=checked.leakage.to_json() if checked.leakage else "not checked",
                    tensorboard=tensorboard_status(cfg.output),
                    **({"overrides": overrides} if overrides else {}),
                    **({"sweep": sweep} if sweep else {}))
    for warning in checked.summary["warnings"]:
        progress.warning(warning)
    if cfg.output.tensorboard == "auto" and not tensorboard_installed():
        progress.warning(f"TensorBoard logs {tensorboard_status(cfg.output)}.")
    write_json(run.splits, experiment.plan.to_json())
    return run, train_run(checked, run, progress, started)


def train_run(checked: Checked, run: RunDir, progress: Progress, started: float,
              earlier_s: float = 0.0) -> dict[str, Any]:
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
        metrics = scheme(checked, run, progress)
    except KeyboardInterrupt:
        ended(status="interrupted")
        raise RunInterrupted(run.path) from None
    except BaseException as exc:
        ended(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        progress.end()
    ended(status="completed")
    return metrics

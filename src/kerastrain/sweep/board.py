"""TensorBoard's HParams dashboard for a sweep: each trial's run gets an HParams summary
in its `logs/` (its `--set` values and its trial id), beside the epoch curves TensorBoard's
callback wrote there, so `tensorboard --logdir <runs_dir>` shows the trials side by side in
the HParams tab. Only when the tensorboard package is installed and the run wrote logs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from kerastrain.rundir import RunDir


def hparams_summary(run_dir: str | None, overrides: dict[str, Any], trial: str) -> bool:
    """Write the trial's HParams summary (`overrides`: its `--set` values, as the config
    reads them) into its run's logs/; whether it was written."""
    logs = RunDir(Path(run_dir)).logs if run_dir else None
    if logs is None or not logs.is_dir() or importlib.util.find_spec("tensorboard") is None:
        return False
    from tensorboard.plugins.hparams import api as hp

    from kerastrain import _keras

    tf = _keras.tf()
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        values[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    with tf.summary.create_file_writer(str(logs)).as_default():
        hp.hparams(values, trial_id=trial)
    return True

"""A fold's scores on its validation rows (metrics.json's `validation`), without scoring
the rows a second time where Keras already did.

When the rows Keras validates on are the rows the fold is scored on (no inner split),
Keras's `val_*` logs of the last epoch are `model.evaluate` of the same compiled test
function, on the same batches in the same order, with the weights the model ends with,
provided nothing changes the weights after that last validation. Then those logs are
the scores a re-score gives, to the bit, and the re-score (1-2 s on 24,000 rows) is
skipped. Anything that could make them differ falls back to the re-score:

- the last epoch run in this `fit` was not validated (`validation_freq`), or none ran;
- a callback that is not known to leave the weights as the last epoch ended them (a
  plugin's, EarlyStopping with `restore_best_weights`);
- an optimizer with `use_ema` (Keras writes the moving averages into the weights when
  training ends);
- a model with several outputs (`evaluate_model` reweighs their losses);
- a device other than the CPU, where reductions need not repeat to the bit.

`tests/test_scores.py` holds the logged scores equal to a re-score of the saved model.
"""

from __future__ import annotations

from typing import Any

from kerastrain import _keras
from kerastrain.training.backup import EpochBackup
from kerastrain.training.callbacks import (
    BestCheckpoint,
    EpochProgress,
    HeldOutCurves,
    StopOnNaN,
)
from kerastrain.training.strategy import StrategyChoice

keras = _keras.keras()

# callbacks that never change the weights after the last epoch's validation (kerastrain's
# BestCheckpoint sets the best weights back to the current ones once it has saved them)
_LEAVE_WEIGHTS = (keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau,
                  keras.callbacks.ModelCheckpoint, keras.callbacks.CSVLogger,
                  keras.callbacks.TensorBoard, keras.callbacks.TerminateOnNaN,
                  keras.callbacks.ProgbarLogger, keras.callbacks.RemoteMonitor,
                  keras.callbacks.History, BestCheckpoint, HeldOutCurves, StopOnNaN,
                  EpochProgress, EpochBackup)


class LastLogs(keras.callbacks.Callback):
    """The logs of the last epoch `fit` ran (None before one ends). Placed last, it sees
    them as every other callback left them."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: dict[str, Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.logs = dict(logs or {})


def _leaves_weights(callback: Any) -> bool:
    if type(callback) not in _LEAVE_WEIGHTS:
        return False
    return not getattr(callback, "restore_best_weights", False)


def _averages_weights(optimizer: Any) -> bool:
    inner = getattr(optimizer, "inner_optimizer", None)   # a LossScaleOptimizer's
    return bool(getattr(optimizer, "use_ema", False) or getattr(inner, "use_ema", False))


def logged_scores(model: Any, last: LastLogs, callbacks: list[Any],
                  strategy: StrategyChoice) -> dict[str, float] | None:
    """The model's scores on the rows Keras validated on, read from the last epoch's
    `val_*` logs, or None where they may differ from a re-score (see the module)."""
    logs = last.logs
    if logs is None or len(model.outputs) > 1:
        return None
    if not all("CPU" in d.upper() for d in strategy.devices):
        return None
    if not all(_leaves_weights(c) for c in callbacks) or _averages_weights(model.optimizer):
        return None
    scores = {k[len("val_"):]: float(v) for k, v in logs.items() if k.startswith("val_")}
    trained = {k for k in logs if not k.startswith("val_") and k != "learning_rate"}
    if not scores or set(scores) != trained:   # not validated, or another key in the logs
        return None
    return scores

"""A target's task (classification or regression) and label encoding, as configured or
inferred from its values and from hints the caller gives (the loss and metrics that will
score it: the data layer never reads the compile settings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TargetHints:
    """What the caller knows of a target beyond its values (from the loss and metrics that
    will score it), so the data layer never reads the compile settings itself."""

    classification: bool = False  # a classification loss or metric scores it
    one_hot: bool = False         # its loss takes one-hot labels


def infer_task(task: str, target: np.ndarray, hints: TargetHints) -> str:
    """'classification' or 'regression': `task` unless 'auto', else from the labels (strings
    are classes) and then the hints."""
    if task != "auto":
        return task
    if target.dtype == object or target.dtype.kind in "bU":
        return "classification"
    return "classification" if hints.classification else "regression"


def infer_target_encoding(encoding: str, hints: TargetHints) -> str:
    """'integer' or 'one_hot': `encoding` unless 'auto', else as the loss takes labels."""
    if encoding != "auto":
        return encoding
    return "one_hot" if hints.one_hot else "integer"

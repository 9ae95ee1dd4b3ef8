"""Splitting rows: a test split set aside first, then one or more (train, validation) folds.

Every scheme yields the same `SplitPlan`, so training loops over `plan.folds` whatever
the scheme; indices always point into the one loaded table (no copies of the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kerastrain.config.schema import ValidationSpec
from kerastrain.errors import KeyProblem


@dataclass(frozen=True)
class Fold:
    name: str              # "holdout", or "<repeat>-<fold>" for cross-validation
    train: np.ndarray
    validation: np.ndarray


@dataclass(frozen=True)
class SplitPlan:
    scheme: str
    test: np.ndarray
    folds: list[Fold]

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "test": self.test.tolist(),
                "folds": [{"name": f.name, "train": f.train.tolist(),
                           "validation": f.validation.tolist()} for f in self.folds]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SplitPlan:
        def arr(v: list[int]) -> np.ndarray:
            return np.asarray(v, dtype=np.int64)
        return cls(data["scheme"], arr(data["test"]),
                   [Fold(f["name"], arr(f["train"]), arr(f["validation"])) for f in data["folds"]])


def _stratify_labels(labels: np.ndarray | None, stratify: bool | str,
                     fraction: float, n: int, what: str) -> np.ndarray | None:
    """The labels to stratify on, or None; an error when stratifying cannot work."""
    if labels is None or stratify is False:
        if stratify is True and labels is None:
            raise KeyProblem(("validation", "stratify"),
                             "stratifying needs a classification target.")
        return None
    values, counts = np.unique(labels.astype(str), return_counts=True)
    n_split = int(np.ceil(fraction * n))
    too_small = counts.min() < 2 or n_split < len(values) or n - n_split < len(values)
    if too_small:
        if stratify is True:
            raise KeyProblem(
                ("validation", "stratify"), f"cannot stratify the {what} split: the smallest class "
                f"({values[counts.argmin()]!r}) has {counts.min()} rows and the split holds "
                f"{n_split} of {n} rows for {len(values)} classes. Use a larger split, or set "
                "stratify: false.")
        return None
    return labels.astype(str)


def _split(rows: np.ndarray, fraction: float, labels: np.ndarray | None, spec: ValidationSpec,
           seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    n = len(rows)
    n_out = int(np.ceil(fraction * n))
    if n_out < 1 or n - n_out < 1:
        key = "test_split" if what == "test" else "validation_split"
        raise KeyProblem(("validation", key), f"a {what} split of {fraction:g} of {n} rows "
                         f"leaves {n_out} {what} and {n - n_out} other rows; both need one.")
    strat = _stratify_labels(None if labels is None else labels[rows], spec.stratify,
                             fraction, n, what)
    keep, out = train_test_split(rows, test_size=n_out, shuffle=spec.shuffle,
                                 random_state=seed if spec.shuffle else None,
                                 stratify=strat if spec.shuffle else None)
    return np.sort(keep), np.sort(out)


def make_splits(n_rows: int, labels: np.ndarray | None, spec: ValidationSpec,
                seed: int) -> SplitPlan:
    """The test split (if any), then the folds of `spec.scheme`.

    `labels` are the class labels of a classification target (None for regression); they
    only steer stratification.
    """
    rows = np.arange(n_rows, dtype=np.int64)
    test = np.empty(0, dtype=np.int64)
    if spec.test_split > 0:
        rows, test = _split(rows, spec.test_split, labels, spec, seed, "test")
    train, validation = _split(rows, spec.validation_split, labels, spec, seed + 1, "validation")
    return SplitPlan(spec.scheme, test, [Fold("holdout", train, validation)])

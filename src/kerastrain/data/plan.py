"""What splitting makes: a `SplitPlan` of a test split and one or more folds, as row
indices into the one loaded table, saved as splits.json and read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EMPTY = np.empty(0, dtype=np.int64)
LINE_ROWS = 1 << 14  # row indices per line of splits.json


@dataclass(frozen=True)
class Fold:
    """One fold. `train` are the splitter's training rows, `validation` the rows the fold
    is scored on; `inner` (cross-validation only) is the part of `train` that Keras
    validates on to steer training, so the model fits on `fit_rows`."""

    name: str              # "holdout", or "<repeat>-<fold>" for cross-validation (0-based)
    train: np.ndarray
    validation: np.ndarray
    inner: np.ndarray = field(default_factory=lambda: EMPTY)

    @property
    def fit_rows(self) -> np.ndarray:
        """The rows the model trains on (and preprocessing is fitted on)."""
        if not len(self.inner):
            return self.train
        return self.train[~np.isin(self.train, self.inner)]

    @property
    def steer_rows(self) -> np.ndarray:
        """The rows Keras validates on (`val_*` logs, which callbacks monitor)."""
        return self.inner if len(self.inner) else self.validation


@dataclass(frozen=True)
class SplitPlan:
    scheme: str
    test: np.ndarray
    folds: list[Fold]
    splitter: str = ""
    n_splits: int = 1
    n_repeats: int = 1
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def fold_json(f: Fold) -> dict[str, Any]:
            data = {"name": f.name, "train": f.train.tolist(), "validation": f.validation.tolist()}
            if len(f.inner):
                data["inner_validation"] = f.inner.tolist()
            return data
        return {"scheme": self.scheme, "splitter": self.splitter, "n_splits": self.n_splits,
                "n_repeats": self.n_repeats, "notes": list(self.notes),
                "test": self.test.tolist(), "folds": [fold_json(f) for f in self.folds]}

    def json_pieces(self) -> Iterator[str]:
        """`to_json`'s content as JSON text, a piece at a time: the row lists are written
        from the arrays, LINE_ROWS indices a line, never held as one list of Python ints
        (a million rows would be about 100 MiB of them)."""
        arrays: list[np.ndarray] = []

        def mark(rows: np.ndarray) -> str:
            arrays.append(rows)
            return f"\x00{len(arrays) - 1}\x00"

        data = {"scheme": self.scheme, "splitter": self.splitter, "n_splits": self.n_splits,
                "n_repeats": self.n_repeats, "notes": list(self.notes), "test": mark(self.test),
                "folds": [{"name": f.name, "train": mark(f.train),
                           "validation": mark(f.validation),
                           **({"inner_validation": mark(f.inner)} if len(f.inner) else {})}
                          for f in self.folds]}
        for i, part in enumerate(json.dumps(data, indent=2).split('"\\u0000')):
            if i:
                index, part = part.split('\\u0000"', 1)
                rows = arrays[int(index)]
                yield "[" + ",\n".join(",".join(map(str, rows[k:k + LINE_ROWS].tolist()))
                                       for k in range(0, len(rows), LINE_ROWS)) + "]"
            yield part

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SplitPlan:
        def arr(v: list[int]) -> np.ndarray:
            return np.asarray(v, dtype=np.int64)
        folds = [Fold(f["name"], arr(f["train"]), arr(f["validation"]),
                      arr(f.get("inner_validation", []))) for f in data["folds"]]
        return cls(data["scheme"], arr(data["test"]), folds, data.get("splitter", ""),
                   data.get("n_splits", 1), data.get("n_repeats", 1),
                   tuple(data.get("notes", ())))

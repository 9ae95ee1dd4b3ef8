"""The leakage check made before training: rows identical in every feature, and groups,
that sit on both sides of a split.

A duplicated row on both sides means the model is scored on a row it trained on; the
check counts them (it cannot know if they are true duplicates or chance coincidences,
so it reports and leaves the verdict to `validation.leakage`). Rows are hashed by
`np.unique`, so the check is O(n log n), never O(n^2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerastrain.data.splits import SplitPlan
from kerastrain.data.table import Table


def row_ids(table: Table, names: list[str]) -> np.ndarray:
    """One integer per row, equal for rows whose named columns are all equal."""
    codes = []
    for name in names:
        values = table.columns[name]
        if values.dtype == object:
            values = values.astype(str)
        elif values.ndim > 1:  # arrays (images): one opaque value per row, as raw bytes
            flat = np.ascontiguousarray(values).reshape(len(values), -1)
            values = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1])))[:, 0]
        codes.append(np.unique(values, return_inverse=True)[1].reshape(-1))
    if len(codes) == 1:
        return codes[0].astype(np.int64)
    stacked = np.stack(codes, axis=1).astype(np.int64)
    return np.unique(stacked, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _shared(ids: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """How many rows of `a` have an identical row in `b`."""
    if not len(a) or not len(b):
        return 0
    return int(np.isin(ids[a], ids[b]).sum())


def _shared_groups(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    if not len(a) or not len(b):
        return 0
    return int(len(np.intersect1d(groups[a].astype(str), groups[b].astype(str))))


@dataclass
class LeakageReport:
    """Counts per pair of splits: duplicated feature rows, and groups split across."""

    duplicates: dict[str, int] = field(default_factory=dict)
    split_groups: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.duplicates.values()) + sum(self.split_groups.values())

    def to_json(self) -> dict[str, Any]:
        return {"duplicate_rows": self.duplicates, "split_groups": self.split_groups,
                "total": self.total}

    def headline(self) -> str:
        """One line: the totals."""
        if not self.total:
            return "none found"
        return (f"{sum(self.duplicates.values())} duplicated rows and "
                f"{sum(self.split_groups.values())} split groups across splits")

    def message(self) -> str:
        parts = [f"{where}: {n} rows equal to a training row in every feature"
                 for where, n in self.duplicates.items() if n]
        parts += [f"{where}: {n} groups also in its training rows"
                  for where, n in self.split_groups.items() if n]
        shown = "; ".join(parts[:6]) + ("; ..." if len(parts) > 6 else "")
        return (f"possible leakage: {shown}. Drop the duplicates, or name a column that "
                "groups them in validation.groups (validation.leakage: ignore silences this).")


def check_leakage(table: Table, features: list[str], plan: SplitPlan,
                  groups: np.ndarray | None) -> LeakageReport:
    """Duplicates and split groups between the test split and the rest, and between each
    fold's scored rows (and its inner validation rows) and its training rows."""
    ids = row_ids(table, features)
    report = LeakageReport()
    pairs: list[tuple[str, np.ndarray, np.ndarray]] = []
    if len(plan.test):
        rest = np.setdiff1d(np.arange(table.n_rows), plan.test)
        pairs.append(("test", plan.test, rest))
    for fold in plan.folds:
        pairs.append((f"fold {fold.name} validation", fold.validation, fold.train))
        if len(fold.inner):
            pairs.append((f"fold {fold.name} inner validation", fold.inner, fold.fit_rows))
    for where, a, b in pairs:
        report.duplicates[where] = _shared(ids, a, b)
        if groups is not None:
            report.split_groups[where] = _shared_groups(groups, a, b)
    return report

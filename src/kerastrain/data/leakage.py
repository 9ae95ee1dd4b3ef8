"""The leakage check made before training: rows identical in every feature, and groups,
that sit on both sides of a split.

A duplicated row on both sides means the model is scored on a row it trained on; the
check counts them (it cannot know if they are true duplicates or chance coincidences,
so it reports and leaves the verdict to `validation.leakage`).

Rows are compared by a 64-bit hash of their feature values, computed in O(n) and in
chunks of bounded size (no sort of whole rows, no copy of the table): each row's bytes
are read as 64-bit words, every word is mixed with its position's salt by MurmurHash3's
finalizer and the mixed words are summed; the columns' hashes are mixed together. Equal
values hash equal: -0.0 counts as 0.0 and every NaN as one NaN; strings and other Python
objects hash by their `str`. Unequal rows may share a hash with a probability near
2^-64 per pair (about 1e-10 for a million rows), which could only add a spurious
duplicate to the count, never hide one. An image folder's images are compared by their
files' bytes (a digest taken as the folder is read), not decoded: the same picture saved
in two encodings is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerastrain.data.filearray import FileArray
from kerastrain.data.images import ImageFiles
from kerastrain.data.splits import SplitPlan
from kerastrain.data.table import Table

_CHUNK_WORDS = 1 << 16          # 512 KiB of words per step: the temporaries stay in cache
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)


def _fmix(z: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, in place: a bijection whose every output bit
    depends on every input bit, so sums of mixed words behave like random numbers."""
    tmp = np.empty_like(z)
    for multiplier in (_M1, _M2, None):
        np.right_shift(z, _SHIFT, out=tmp)
        z ^= tmp
        if multiplier is not None:
            z *= multiplier
    return z


def _salts(n: int) -> np.ndarray:
    """One pseudo-random 64-bit salt per word position, so a row's words are not a bag."""
    return _fmix(np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)


def _words(chunk: np.ndarray) -> np.ndarray:
    """The rows of `chunk` as 64-bit words (zero-padded), with equal values made equal
    bytes: -0.0 -> 0.0 and one NaN."""
    flat = chunk.reshape(len(chunk), -1)
    if flat.dtype.kind in "fc":
        flat = flat + flat.dtype.type(0)        # a copy of the chunk; -0.0 + 0.0 is 0.0
        flat[np.isnan(flat)] = np.nan
    raw = np.ascontiguousarray(flat).view(np.uint8).reshape(len(chunk), -1)
    if raw.shape[1] % 8:
        padded = np.zeros((len(chunk), raw.shape[1] + (-raw.shape[1]) % 8), np.uint8)
        padded[:, :raw.shape[1]] = raw
        raw = padded
    return raw.view(np.uint64)


def column_hashes(values: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of one column, equal for equal rows."""
    n = len(values)
    if isinstance(values, ImageFiles):  # image files: by their bytes, not decoded
        return values.row_hashes()
    if values.dtype == object:
        texts = (str(v) if values.ndim == 1 else tuple(map(str, np.ravel(v))) for v in values)
        codes = np.fromiter((hash(t) for t in texts), dtype=np.int64, count=n)
        return _fmix(codes.view(np.uint64) ^ _GOLDEN)
    row_words = -(-values[:1].nbytes // 8) if n else 1
    salts = _salts(max(row_words, 1))
    step = max(1, _CHUNK_WORDS // max(row_words, 1))
    out = np.empty(n, dtype=np.uint64)
    blocks = values.blocks() if isinstance(values, FileArray) else [(0, values)]
    for first, block in blocks:   # a file's rows read a few MiB at a time, not 512 KiB
        for start in range(0, len(block), step):
            mixed = _fmix(_words(block[start:start + step]) ^ salts)
            mixed.sum(axis=1, dtype=np.uint64, out=out[first + start:first + start + len(mixed)])
    return out


def row_ids(table: Table, names: list[str]) -> np.ndarray:
    """One 64-bit id per row (uint64), equal for rows whose named columns are all equal
    (and, with a probability near 2^-64 per pair, for two rows that are not)."""
    ids = np.zeros(table.n_rows, dtype=np.uint64)
    for name in names:
        ids *= _GOLDEN
        ids ^= column_hashes(table.columns[name])
        _fmix(ids)
    return ids


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
    distinct: int = 0   # distinct feature rows
    rows: int = 0

    @property
    def small_space(self) -> bool:
        """Few distinct feature rows (at most half the rows): duplicates come with the data."""
        return 0 < self.distinct <= self.rows // 2

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
        if self.small_space and not sum(self.split_groups.values()):
            return (f"rows equal in every feature on both sides of a split ({shown}): the "
                    f"features take only {self.distinct} distinct rows in {self.rows}, so "
                    "duplicates are expected and are not leakage by themselves; keep them. If "
                    "equal rows are the same entity (a customer, a patient), name a column "
                    "that identifies it in validation.groups (validation.leakage: ignore "
                    "silences this).")
        return (f"possible leakage: {shown}. Drop the duplicates, or name a column that "
                "groups them in validation.groups (validation.leakage: ignore silences this).")


def check_leakage(table: Table, features: list[str], plan: SplitPlan,
                  groups: np.ndarray | None) -> LeakageReport:
    """Duplicates and split groups between the test split and the rest, and between each
    fold's scored rows (and its inner validation rows) and its training rows."""
    ids = row_ids(table, features)
    report = LeakageReport(distinct=len(np.unique(ids)), rows=len(ids))
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

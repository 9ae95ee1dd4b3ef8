"""Data that comes already split: `data.source` holds the training rows, `data.validation`
and `data.test` the rows set aside (each a source of any type, with the same columns).

The three are read into one table, source rows first, so that everything downstream
(preprocessing fitted on training rows, the leakage check, the fingerprint) works on row
indices as for one file. The split plan then takes its rows from the files:

- `data.test`: the test split is that file's rows (scored once, after training);
  `validation.test_split` must be 0.
- `data.validation`: one hold-out fold, trained on the source's rows and validated on that
  file's; `validation.scheme` must be holdout and `validation_split` not given.
- without `data.validation`, the validation section splits the source's rows as usual
  (hold-out or cross-validation), never touching the test file's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kerastrain.config.schema import DataSpec, SourceSpec, ValidationSpec
from kerastrain.data.filearray import concatenate
from kerastrain.data.plan import EMPTY
from kerastrain.data.sources import load_configured_source, load_source
from kerastrain.data.splits import Fold, SplitPlan, make_splits
from kerastrain.data.table import Table
from kerastrain.errors import DataError, KeyProblem

PARTS = ("validation", "test")


def check_parts(data: DataSpec, validation: ValidationSpec) -> None:
    """The validation section agrees with the files given: a problem at its key."""
    if data.test is not None and validation.test_split > 0:
        raise KeyProblem(("validation", "test_split"), "data.test is the test split; set "
                         "test_split to 0 (or remove data.test).")
    if data.validation is None:
        return
    if validation.scheme != "holdout":
        raise KeyProblem(("validation", "scheme"), "data.validation is the hold-out "
                         f"validation rows; {validation.scheme} cannot use it. Use scheme "
                         "holdout, or remove data.validation to fold the source's rows.")
    if "validation_split" in validation.model_fields_set:
        raise KeyProblem(("validation", "validation_split"), "data.validation is the "
                         "validation split; remove validation_split (or data.validation).")


def load_parts(data: DataSpec, seed: int) -> tuple[Table, dict[str, np.ndarray]]:
    """One table of the source's rows then each part's, and each part's row indices (no
    entry when the data is not split in files)."""
    first = load_configured_source(data.source, seed)
    given = [(name, getattr(data, name)) for name in PARTS if getattr(data, name) is not None]
    if not given:
        return first, {}
    tables, parts, start = [first], {}, first.n_rows
    for name, spec in given:
        table = _load_part(name, spec, seed)
        _check_columns(first, table, name)
        tables.append(table)
        parts[name] = np.arange(start, start + table.n_rows, dtype=np.int64)
        start += table.n_rows
    columns = {c: concatenate([t.columns[c] for t in tables]) for c in first.names}
    origin = " + ".join(t.origin for t in tables)
    return Table(columns, origin), parts


def _load_part(name: str, spec: SourceSpec, seed: int) -> Table:
    try:
        return load_source(spec, seed)
    except DataError as exc:
        raise KeyProblem(("data", name, "path"), str(exc)) from None


def _check_columns(first: Table, table: Table, name: str) -> None:
    if set(table.names) != set(first.names):
        lacking = [c for c in first.names if c not in table.names]
        extra = [c for c in table.names if c not in first.names]
        raise KeyProblem(("data", name), f"{table.origin} must have the source's columns: "
                         + "; ".join(part for part in (
                             lacking and f"it lacks {', '.join(lacking)}",
                             extra and f"it has {', '.join(extra)} besides") if part))
    for column in first.names:
        if table.columns[column].shape[1:] != first.columns[column].shape[1:]:
            raise KeyProblem(("data", name), f"{table.origin}: column {column!r} has "
                             f"shape {list(table.columns[column].shape[1:])} per row; the "
                             f"source's has {list(first.columns[column].shape[1:])}.")


def split_parts(parts: dict[str, np.ndarray], n_rows: int, labels: np.ndarray | None,
                spec: ValidationSpec, seed: int, groups: np.ndarray | None,
                time_rows: np.ndarray | None, usable: np.ndarray | None) -> SplitPlan:
    """`make_splits` over the source's rows, the files' rows in their places."""
    train = source_rows(n_rows, parts, usable)
    if "validation" in parts:
        plan = SplitPlan("holdout", EMPTY, [Fold("holdout", train, EMPTY)])
    else:
        plan = make_splits(n_rows, labels, spec, seed, groups, time_rows, train)
    return with_parts(plan, parts, train, usable)


def source_rows(n_rows: int, parts: dict[str, np.ndarray],
                usable: np.ndarray | None) -> np.ndarray | None:
    """The rows the validation section may split: the source's usable rows."""
    if not parts:
        return usable
    rows = np.arange(min(int(p[0]) for p in parts.values()), dtype=np.int64)
    return rows if usable is None else rows[np.isin(rows, usable)]


def with_parts(plan: SplitPlan, parts: dict[str, np.ndarray], train: np.ndarray | None,
               usable: np.ndarray | None) -> SplitPlan:
    """`plan` (made on the source's rows `train`) with the test and validation files'
    usable rows in their places."""
    def kept(rows: np.ndarray) -> np.ndarray:
        return rows if usable is None else rows[np.isin(rows, usable)]

    if "test" in parts:
        plan = replace(plan, test=kept(parts["test"]))
    if "validation" in parts:
        plan = replace(plan, folds=[Fold("holdout", train, kept(parts["validation"]))])
    return plan

"""Values checked at the boundary, wherever rows come in (training, evaluate, predict):
missing values, text or infinities in numeric columns (arrays, targets, split columns);
and labels as JSON keeps them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from kerastrain.data.filearray import FileArray
from kerastrain.data.table import MISSING_TOKENS, Table
from kerastrain.errors import DataError


def all_finite(values: np.ndarray) -> bool:
    """True when a float array holds no NaN and no infinity, told by its sum (NaN and
    infinities carry through a sum) without a mask as large as the array; False also
    when the sum overflows, where the callers look value by value."""
    return values.dtype.kind == "f" and bool(np.isfinite(np.sum(values, dtype=values.dtype)))


def _pieces(values: np.ndarray | FileArray) -> Iterator[np.ndarray]:
    """The column whole, or a column left in its file a few MiB of rows at a time."""
    if isinstance(values, FileArray):
        yield from (block for _, block in values.blocks())
    else:
        yield values


def is_missing(values: np.ndarray | FileArray) -> np.ndarray:
    """Per row: whether it misses a value (any NaN of an array row)."""
    return np.concatenate([_missing(piece) for piece in _pieces(values)])


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f" and all_finite(values):
        return np.zeros(len(values), dtype=bool)
    if values.dtype == object:
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) or
                         (isinstance(v, str) and v.strip().lower() in MISSING_TOKENS)
                         for v in values], dtype=bool)
    if values.dtype.kind == "f":
        return np.isnan(values).reshape(len(values), -1).any(axis=1)
    return np.zeros(len(values), dtype=bool)


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"


def check_column(table: Table, name: str, numeric: bool) -> None:
    """DataError for the first missing value, and in a numeric column for the first
    non-numeric or infinite one."""
    values = table.columns[name]
    if values.dtype.kind == "f" and all(all_finite(piece) for piece in _pieces(values)):
        return  # no NaN and no infinity, told in one pass (a file's rows read once)
    missing = np.flatnonzero(is_missing(values))
    if missing.size:
        raise DataError(f"{table.origin}: column {name!r} has a missing value at "
                        f"{table.row_ref(int(missing[0]))} ({_rows(missing.size)} in all). "
                        "Fill or drop those rows first.")
    if not numeric:
        return
    finite = np.concatenate([_finite(piece, table, name) for piece in _pieces(values)])
    infinite = np.flatnonzero(~finite)
    if infinite.size:
        raise DataError(f"{table.origin}: column {name!r} holds an infinite value at "
                        f"{table.row_ref(int(infinite[0]))} ({_rows(infinite.size)} in all); "
                        "only finite numbers can be scaled and trained on. Fix or drop those "
                        "rows first.")


def _finite(values: np.ndarray, table: Table, name: str) -> np.ndarray:
    """Per row: whether its numbers are all finite; a DataError for text."""
    finite = np.ones(len(values), dtype=bool)
    if values.dtype == object:
        for i, value in enumerate(values):
            try:
                finite[i] = np.isfinite(float(value))
            except (TypeError, ValueError):
                raise DataError(f"{table.origin}: column {name!r} is numeric but "
                                f"{table.row_ref(i)} holds {value!r}. Fix the value, or list "
                                f"the column in data.preprocessing.categorical_columns.") from None
    elif values.dtype.kind == "f" and not all_finite(values):
        finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
    return finite


def labels(values: np.ndarray) -> set[Any]:
    """The distinct labels of `values` as JSON keeps them (`label_value`): `np.unique`
    first where the dtype sorts, so a target of 60,000 rows costs one conversion per
    class, not per row."""
    distinct = values if values.dtype == object else np.unique(values)
    return {label_value(v) for v in distinct}


def label_value(value: Any) -> Any:
    """A label as JSON keeps it: str, or int for integral numbers, or float."""
    if isinstance(value, (str, np.str_)):
        return str(value)
    number = float(value)
    return int(number) if number.is_integer() else number


def label_order(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)

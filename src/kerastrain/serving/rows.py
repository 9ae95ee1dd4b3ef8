"""Rows of a request (JSON objects or CSV text) checked and turned into the raw-input
model's column arrays. Each problem names its row (counted from 0) and column; an empty
field, null or a missing marker is a missing value, not a problem."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from kerastrain.export.graph import RawInput


class RowProblems(Exception):
    """The request's rows hold values the model cannot take: a list of
    {row, column, message}."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


MAX_SHOWN = 20


def _number(value: Any, marks: frozenset[str]) -> float | str:
    """A float (NaN where missing), or a message saying why the value is no number."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return "expected a number, got true/false"
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value.strip().lower() in marks:
            return math.nan
        try:
            return float(value)
        except ValueError:
            return f"expected a number, got {value!r}"
    return f"expected a number, got {type(value).__name__}"


def _text(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    return None


def columns(rows: list[Any], inputs: list[RawInput],
            marks: frozenset[str]) -> dict[str, np.ndarray]:
    """The model's inputs (keyed by `RawInput.key`) from `rows`, each a mapping of column
    name to value; `RowProblems` with every problem found."""
    problems: list[dict[str, Any]] = []
    out: dict[str, list[Any]] = {spec.key: [] for spec in inputs}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append({"row": i, "column": None,
                             "message": "a row is an object of column: value"})
            continue
        for spec in inputs:
            if spec.column not in row:
                problems.append({"row": i, "column": spec.column,
                                 "message": "missing column (send null or \"\" for a "
                                            "missing value)"})
                continue
            value = row[spec.column]
            if spec.shape:
                cell = _array(value, spec.shape)
            elif spec.dtype == "float32":
                cell = _number(value, marks)
            else:
                cell = _text(value)
                cell = "expected a string" if cell is None else (cell,)
            if isinstance(cell, str):
                problems.append({"row": i, "column": spec.column, "message": cell})
            else:
                out[spec.key].append(cell[0] if isinstance(cell, tuple) else cell)
    if problems:
        raise RowProblems(problems[:MAX_SHOWN])
    return {spec.key: np.asarray(out[spec.key], dtype=object if spec.dtype == "string"
                                 else np.float32).reshape((len(rows), *spec.shape))
            for spec in inputs}


def _array(value: Any, shape: tuple[int, ...]) -> Any:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        return f"expected numbers of shape {list(shape)}"
    if array.shape != shape:
        return f"expected numbers of shape {list(shape)}, got shape {list(array.shape)}"
    return array


def csv_rows(text: str) -> list[dict[str, str]]:
    """A CSV body's rows, by its header; `RowProblems` for a row of another width."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise RowProblems([{"row": None, "column": None,
                            "message": "the CSV body has no header row"}])
    rows = []
    for i, cells in enumerate(reader):
        if not cells:
            continue
        if len(cells) != len(header):
            raise RowProblems([{"row": i, "column": None,
                                "message": f"{len(cells)} fields; the header has "
                                           f"{len(header)}"}])
        rows.append(dict(zip(header, cells, strict=True)))
    return rows

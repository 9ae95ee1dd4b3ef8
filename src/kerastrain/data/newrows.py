"""What rows scored after training (evaluate, predict) hold that the training rows did
not: missing values the layers fill, categories they put in the 'other' bucket, dates and
numbers that do not parse (counted as missing). Said, never refused; what no layer can
take (an array of another shape, an infinite number) is a problem."""

from __future__ import annotations

from typing import Any

import numpy as np

from kerastrain.config.schema import PreprocessingSpec
from kerastrain.data import kinds
from kerastrain.data.table import Table
from kerastrain.data.values import check_column
from kerastrain.errors import DataError


def row_notes(pre: Any, table: Table) -> tuple[list[str], list[str]]:
    """(notes, problems) over every feature of `pre` (a `Preprocessor`) in `table`."""
    marks = kinds.markers(PreprocessingSpec(missing_values=pre.missing_values))
    notes: list[str] = []
    problems: list[str] = []
    for entry in pre.features:
        name, values = entry["name"], table.columns[entry["name"]]
        if entry["kind"] == "array":
            problems += _array_problems(table, entry, values)
            continue
        if values.ndim > 1:
            problems.append(f"{table.origin}: column {name!r} holds arrays of shape "
                            f"{list(values.shape[1:])} per row; the model was trained on "
                            "one value per row.")
            continue
        if "scale" in entry:
            numbers, bad = kinds.as_numbers(values, marks)
            infinite = np.flatnonzero(np.isinf(numbers))
            if infinite.size:
                problems.append(f"{table.origin}: column {name!r} holds an infinite value at "
                                f"{table.row_ref(int(infinite[0]))} ({infinite.size} rows in "
                                "all); only finite numbers can be scaled.")
            notes += _missing_notes(name, values, bad, np.isnan(numbers), "numbers")
        elif entry["kind"] in ("date", "datetime"):
            days, bad = kinds.as_days(values, marks)
            notes += _missing_notes(name, values, bad, np.isnan(days), "dates")
        elif entry["kind"] != "text" and entry.get("encoding") != "hash":
            notes += _unseen_notes(entry, kinds.as_strings(values, marks))
    return notes, problems


def _array_problems(table: Table, entry: dict[str, Any], values: np.ndarray) -> list[str]:
    if values.dtype.kind not in "iufb" or list(values.shape[1:]) != entry["shape"]:
        return [f"{table.origin}: array {entry['name']!r} holds {values.dtype} values of "
                f"shape {list(values.shape[1:])} per row; the model was trained on numbers of "
                f"shape {entry['shape']}."]
    try:
        check_column(table, entry["name"], numeric=True)
    except DataError as exc:
        return [str(exc)]
    return []


def _missing_notes(name: str, values: np.ndarray, bad: np.ndarray, missing: np.ndarray,
                   what: str) -> list[str]:
    notes = []
    if len(bad):
        shown = sorted({str(values[i]).strip() for i in bad})
        notes.append(f"column {name!r}: {len(bad)} values are not {what} "
                     f"({kinds.preview(shown)}): counted as missing")
    count = int(missing.sum()) - len(bad)
    if count:
        notes.append(f"column {name!r}: {count} missing values, filled as in training")
    return notes


def _unseen_notes(entry: dict[str, Any], texts: np.ndarray) -> list[str]:
    known = set(entry["categories"])
    unseen = np.array([t not in known for t in texts], dtype=bool)
    if not unseen.any():
        return []
    distinct = sorted(set(texts[unseen].tolist()))
    where = f"count as {entry['categories'][0]!r} (0)" if entry.get("encoding") == "binary" \
        else "go to the 'other' bucket"
    return [f"column {entry['name']!r}: {int(unseen.sum())} rows hold values never kept in "
            f"training ({kinds.preview(distinct)}): they {where}"]

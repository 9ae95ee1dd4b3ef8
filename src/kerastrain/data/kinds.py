"""Column kinds: what each feature column is, inferred from the training rows or set in
`data.columns`, and its cells decoded to the raw values the fitted layers take.

The kinds (docs/columns.md has the rules as tables): numeric, binary, categorical, date,
datetime, text, identifier, constant and empty (the last three dropped); N-D arrays
(images) are `array`. Decoding is reading, not transforming: a numeric column becomes
float64 with NaN where a value is missing, a string column str with '' where missing, a
date column days since 1970-01-01 (float64, NaN where missing). The configured missing
markers ("", NA, ?, ...) are recognised here, compared after stripping spaces. NumPy only:
`validate`'s column report needs no TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from kerastrain.config.schema import ColumnSpec, DataSpec, PreprocessingSpec
from kerastrain.data.table import Table
from kerastrain.data.values import label_value

DROPPED = ("identifier", "empty", "constant")
NUMERIC_SHARE = 0.95    # at least this share of a string column's values parse: numeric
DATE_SHARE = 0.95
NEAR_UNIQUE = 0.9       # distinct values per non-missing value: identifier or text
MIN_ROWS_UNIQUE = 20    # fewer training rows than this tell nothing about uniqueness
MANY_CATEGORIES = 100
ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key|index)$|^(id|index|rowid|row_id)$|[a-z]Id$|ID$",
                     re.IGNORECASE)
DATE_FORMATS = ("%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S",
                "%d %b %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y")   # month names: Mar, March
ISO_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d*)?)?)?"
                      r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?")
# ISO 8601 as NumPy reads it (a year, a month, a day, a time, an offset to UTC), not NumPy's
# other words and forms ('today', 'now', 'NaT', 20240517 as a year): what the exported
# graph reads too (export/dates.py)
DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|^\d{1,2} [A-Za-z]{3,9} \d{4}$|"
                       r"^[A-Za-z]{3,9} \d{1,2}, \d{4}$")
_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


@dataclass(frozen=True)
class Choice:
    """A column's kind, why, and what the user should know (a guess, a cost)."""

    name: str
    kind: str
    reason: str
    notes: tuple[str, ...] = ()
    numbers: bool = False   # read as numbers (numeric; a binary column of two numbers)


def markers(spec: PreprocessingSpec) -> frozenset[str]:
    return frozenset(m.strip().lower() for m in spec.missing_values)


def _is_marker(value: object, marks: frozenset[str]) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return str(value).strip().lower() in marks


def as_numbers(values: np.ndarray, marks: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where missing or not a number) and the rows that held text
    that is neither a number nor a missing marker (a column left in its file is read:
    one number per row)."""
    if values.dtype.kind in "iufb":
        return np.asarray(values).astype(np.float64, copy=False), np.empty(0, dtype=np.int64)
    out = np.full(len(values), np.nan)
    bad = []
    for i, value in enumerate(values):
        if _is_marker(value, marks):
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            bad.append(i)
    return out, np.asarray(bad, dtype=np.int64)


def as_strings(values: np.ndarray, marks: frozenset[str]) -> np.ndarray:
    """Every value as text ('' where missing); numbers as JSON keeps them (3.0 -> '3')."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = "" if _is_marker(value, marks) else str(label_value(value)).strip() \
            if not isinstance(value, str) else value.strip()
    return out


def _parse_date(text: str) -> np.datetime64 | None:
    if ISO_DATE.fullmatch(text):
        try:
            return np.datetime64(text, "s")
        except ValueError:
            return None
    for fmt in DATE_FORMATS:
        try:
            return np.datetime64(datetime.strptime(text, fmt), "s")
        except ValueError:
            continue
    return None


def as_days(values: np.ndarray, marks: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 (fractional for a time of day; NaN where missing or not a
    date) and the rows that held text that is no date."""
    out = np.full(len(values), np.nan)
    present = np.flatnonzero(~missing_mask(values, marks))
    texts = [str(values[i]).strip() for i in present]
    try:  # the common case, ISO dates throughout, parsed at once
        if all(map(ISO_DATE.fullmatch, set(texts))):   # each distinct text checked once
            stamps = np.array(texts, dtype="datetime64[s]")
            out[present] = (stamps - _EPOCH).astype(np.int64) / 86400.0
            return out, np.empty(0, dtype=np.int64)
    except ValueError:
        pass
    bad = []
    for i, value in enumerate(values):
        if _is_marker(value, marks):
            continue
        parsed = _parse_date(str(value).strip())
        if parsed is None:
            bad.append(i)
            continue
        out[i] = (parsed - _EPOCH).astype(np.int64) / 86400.0
    return out, np.asarray(bad, dtype=np.int64)


def decoder(kind: str, marks: frozenset[str]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Cells -> what a feature's layer takes: arrays as they are, days, or strings."""
    if kind == "array":
        return None
    if kind in ("date", "datetime"):
        return lambda values: as_days(values, marks)[0]
    return lambda values: as_strings(values, marks)


def _declared(name: str, values: np.ndarray, spec: ColumnSpec | None,
              categorical: set[str]) -> Choice | None:
    if spec is not None and spec.kind != "auto":
        numbers = spec.kind == "numeric" or (spec.kind == "binary" and values.dtype.kind in "iufb")
        return Choice(name, spec.kind, f"set in data.columns.{name}.kind", numbers=numbers)
    if name in categorical:
        return Choice(name, "categorical", "listed in data.preprocessing.categorical_columns")
    return None


def infer(name: str, values: np.ndarray, marks: frozenset[str],
          spec: ColumnSpec | None = None, categorical: set[str] = frozenset()) -> Choice:
    """The kind of a column from its training rows `values` (or as declared)."""
    if values.ndim > 1:
        return Choice(name, "array", f"{list(values.shape[1:])} numbers per row")
    declared = _declared(name, values, spec, categorical)
    if declared is not None:
        return declared
    numbers, bad = as_numbers(values, marks)
    present = ~np.isnan(numbers)
    missing = int(len(values) - present.sum() - len(bad))
    if missing == len(values):
        return Choice(name, "empty", "no value in the training rows: dropped")
    if values.dtype.kind in "iufb" or len(bad) < 0.5 * (len(values) - missing):
        return _numeric(name, numbers[present], bad, values, missing)
    return _strings(name, as_strings(values, marks))


def _numeric(name: str, numbers: np.ndarray, bad: np.ndarray, values: np.ndarray,
             missing: int) -> Choice:
    notes = ()
    if len(bad) and len(bad) <= (1 - NUMERIC_SHARE) * (len(values) - missing):
        shown = sorted({str(values[i]).strip() for i in bad})
        notes = (f"column {name!r}: {len(bad)} training values are not numbers "
                 f"({preview(shown)}); they count as missing (add them to "
                 "data.preprocessing.missing_values, or set the column's kind)",)
    distinct = np.unique(numbers)
    if len(distinct) == 1:
        return Choice(name, "constant", f"one value, {label_value(distinct[0])!r}, in every "
                      "training row: dropped (it tells rows nothing apart)", notes)
    if len(distinct) == 2:
        return Choice(name, "binary", "numbers, two distinct values", notes, True)
    integral = bool(np.all(distinct == np.round(distinct)))
    if integral and len(numbers) >= MIN_ROWS_UNIQUE and len(distinct) == len(numbers):
        steps = np.diff(distinct)
        if ID_NAME.search(name) or (len(steps) and bool(np.all(steps == 1))):
            why = "a name like an id" if ID_NAME.search(name) else "consecutive integers"
            return Choice(name, "identifier", f"unique integers, {why}: dropped (a guess; "
                          f"set data.columns.{name}.kind to keep it)",
                          (f"column {name!r} looks like an identifier ({why}) and is dropped",))
    return Choice(name, "numeric", "numbers" + (", some not" if len(bad) else ""), notes, True)


def _strings(name: str, texts: np.ndarray) -> Choice:
    present = texts[texts != ""]
    distinct, counts = np.unique(present.astype(str), return_counts=True)
    sample = present[:1000]
    dated = sum(1 for t in sample if DATE_LIKE.match(t) and _parse_date(t) is not None)
    if len(sample) and dated >= DATE_SHARE * len(sample):
        stamps = (_parse_date(t) for t in sample[:200])   # a time of day other than 00:00
        timed = any(s is not None and s != s.astype("datetime64[D]") for s in stamps)
        kind = "datetime" if timed else "date"
        return Choice(name, kind, f"{dated} of the first {len(sample)} values read as dates")
    words = np.array([len(t.split()) for t in sample]) if len(sample) else np.zeros(1)
    ratio = len(distinct) / max(1, len(present))
    if len(distinct) == 2 and len(present) == len(texts):
        return Choice(name, "binary", f"two values: {str(distinct[0])!r}, {str(distinct[1])!r}")
    if words.mean() >= 5 or (ratio > 0.5 and words.mean() >= 2):
        return Choice(name, "text", f"free text: {words.mean():.1f} words per value, "
                      f"{len(distinct)} distinct in {len(present)}")
    if len(distinct) == 1:
        return Choice(name, "constant", f"one value, {str(distinct[0])!r}, in every training "
                      "row: dropped (it tells rows nothing apart)")
    if len(present) >= MIN_ROWS_UNIQUE and (ratio >= NEAR_UNIQUE or
                                            (ratio >= 0.5 and ID_NAME.search(name))):
        return Choice(name, "identifier", f"{len(distinct)} distinct values in {len(present)} "
                      "rows, single words: an identifier, dropped (a guess; set "
                      f"data.columns.{name}.kind: categorical or text to keep it)",
                      (f"column {name!r} looks like an identifier ({len(distinct)} distinct "
                       f"in {len(present)} rows) and is dropped",))
    notes = ()
    if len(distinct) > MANY_CATEGORIES:
        notes = (f"column {name!r} has {len(distinct)} categories: as many one-hot columns. "
                 f"Consider data.columns.{name}: {{encoding: hash}} or max_categories",)
    singles = int((counts == 1).sum())
    return Choice(name, "categorical", f"{len(distinct)} distinct strings"
                  + (f", {singles} seen once" if singles else ""), notes)


def preview(values: list, shown: int = 5) -> str:
    """At most `shown` values, and how many more."""
    text = ", ".join("(missing)" if v == "" else repr(v) for v in values[:shown])
    return text + (f" and {len(values) - shown} more" if len(values) > shown else "")


def missing_mask(values: np.ndarray, marks: frozenset[str]) -> np.ndarray:
    """True where a 1-D column's value is missing (NaN, None or a marker)."""
    if values.dtype.kind == "f":
        return np.isnan(values) if values.ndim == 1 else np.zeros(len(values), dtype=bool)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    return np.fromiter((_is_marker(v, marks) for v in values), dtype=bool, count=len(values))


def usable_rows(table: Table, targets: list[str], features: list[str],
                data: DataSpec) -> tuple[np.ndarray | None, list[str]]:
    """The rows that can be trained on (None: all), and what was left out: rows without a
    target, and rows missing a feature whose missing values are to be dropped
    (`missing: drop`)."""
    marks = markers(data.preprocessing)
    keep = np.ones(table.n_rows, dtype=bool)
    notes = []
    for name in targets:
        missing = missing_mask(table.columns[name], marks)
        if missing.any():
            notes.append(f"{int(missing.sum())} rows have no value of the target {name!r} "
                         "and are left out")
            keep &= ~missing
    for name in features:
        spec = data.columns.get(name)
        values = table.columns[name]
        asked = spec.missing if spec is not None else "auto"
        numeric = values.dtype.kind in "iuf" and asked == "auto" and \
            data.preprocessing.numeric_missing == "drop"
        if values.ndim == 1 and (asked == "drop" or numeric):
            missing = missing_mask(values, marks) & keep
            if missing.any():
                notes.append(f"{int(missing.sum())} rows miss a value of {name!r} "
                             "(missing: drop) and are left out of training")
                keep &= ~missing
    return (None if keep.all() else np.flatnonzero(keep)), notes

"""Fitting one feature column on a fold's training rows: its statistics (NumPy, float64)
or vocabulary, kept as the entry preprocessing.json saves and `data/layers.py` turns into
the layer that applies it.

Every function returns the entry and the problems found (texts), so that all columns'
problems reach the user in one message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.config.schema import ColumnSpec, PreprocessingSpec
from kerastrain.data import chunked
from kerastrain.data.kinds import DROPPED, Choice, as_days, as_numbers, as_strings, preview
from kerastrain.data.table import Table
from kerastrain.data.values import check_column

BAD_SHARE = 0.05    # more values than this that do not parse: a problem, not missing values
CATEGORICAL = ("one_hot", "integer", "hash")
TEXT = ("multi_hot", "count", "tf_idf", "sequence")


def fit_numeric(name: str, values: np.ndarray, rows: np.ndarray, spec: PreprocessingSpec,
                kind: str) -> dict[str, Any]:
    """Scaling statistics of `values[rows]` (times `rescale`) over all its values,
    accumulated in float64 chunk by chunk: no copy of the training rows is made."""
    entry: dict[str, Any] = {"name": name, "kind": kind, "scale": spec.numeric}
    if kind == "array":
        entry["shape"] = list(values.shape[1:])
    factor = spec.rescale or 1.0
    if spec.numeric == "standardize":
        mean, std = chunked.mean_std(values, rows, factor)
        entry.update(mean=mean, std=std if std > 0 else 1.0)
    elif spec.numeric == "minmax":
        low, high = chunked.min_max(values, rows, factor)
        entry.update(min=low, max=high if high > low else low + 1.0)
    return entry


def _strategy(choice: Choice, column: ColumnSpec | None, spec: PreprocessingSpec) -> str:
    asked = column.missing if column is not None else "auto"
    return spec.numeric_missing if asked == "auto" else asked


def _fill(train: np.ndarray, strategy: str, column: ColumnSpec | None) -> float:
    present = train[~np.isnan(train)]
    if strategy == "constant":
        return float(column.fill_value)
    if not len(present):
        return 0.0
    return float(np.mean(present) if strategy == "mean" else np.median(present))


def _parse_problems(table: Table, name: str, bad: np.ndarray, rows: np.ndarray,
                    values: np.ndarray, what: str) -> list[str]:
    """A problem when too many training values do not parse (else they count as missing)."""
    train_bad = bad[np.isin(bad, rows)]
    if len(train_bad) <= BAD_SHARE * len(rows):
        return []
    shown = sorted({str(values[i]).strip() for i in train_bad})
    return [f"column {name!r} is {what} but {table.row_ref(int(train_bad[0]))} holds "
            f"{str(values[train_bad[0]]).strip()!r} ({len(train_bad)} rows in all: "
            f"{preview(shown)}). Add such markers to data.preprocessing.missing_values, or "
            f"set data.columns.{name}.kind (e.g. categorical)."]


def fit_scalar(table: Table, choice: Choice, rows: np.ndarray, spec: PreprocessingSpec,
               column: ColumnSpec | None, marks: frozenset[str]) -> tuple[dict, list[str]]:
    """A numeric (or numeric binary) column: the fill for missing values (mean, median or
    a constant, from the training rows), then the scaling statistics of the filled values."""
    name, values = choice.name, table.columns[choice.name]
    numbers, bad = as_numbers(values, marks)
    problems = _parse_problems(table, name, bad, rows, values, "numeric")
    train = numbers[rows]
    infinite = np.flatnonzero(np.isinf(train))
    if infinite.size:
        problems.append(f"column {name!r} holds an infinite value at "
                        f"{table.row_ref(int(rows[infinite[0]]))} ({infinite.size} rows in "
                        "all); only finite numbers can be scaled and trained on. Fix or drop "
                        "those rows first.")
    strategy = _strategy(choice, column, spec)
    if strategy == "category":
        problems.append(f"data.columns.{name}.missing: category is for categorical columns; "
                        "a numeric one takes mean, median, constant or drop.")
    if strategy == "constant" and (column is None or column.fill_value is None):
        problems.append(f"data.columns.{name}: missing: constant needs fill_value.")
    if problems:
        return {}, problems
    missing = np.isnan(train)
    fill = _fill(train, strategy, column)
    filled = np.where(missing, fill, train) if missing.any() else train
    entry = fit_numeric(name, filled, np.arange(len(filled)), spec, choice.kind)
    entry.update(reason=choice.reason, encoding=spec.numeric, missing=strategy, fill=fill,
                 missing_rows=int(missing.sum()),
                 indicator=bool(missing.any()) and (column is None or column.indicator))
    return entry, []


def fit_categories(table: Table, choice: Choice, rows: np.ndarray, spec: PreprocessingSpec,
                   column: ColumnSpec | None, marks: frozenset[str]) -> tuple[dict, list[str]]:
    """The categories kept (at least `min_frequency` training rows, the `max_categories`
    most frequent), the others and unseen ones sharing one 'other' bucket; a missing value
    is a category of its own when the training rows hold any."""
    name = choice.name
    texts = as_strings(table.columns[name][rows], marks)
    distinct, counts = np.unique(texts.astype(str), return_counts=True)
    encoding = column.encoding if column is not None and column.encoding != "auto" \
        else spec.categorical
    if choice.kind == "binary":
        if len(distinct) != 2:
            return {}, [f"column {name!r} is binary but its training rows hold "
                        f"{len(distinct)} values: {preview(list(distinct))}."]
        encoding = "binary"
    elif encoding not in CATEGORICAL:
        return {}, [f"data.columns.{name}.encoding: {encoding} is for text; a categorical "
                    f"column takes {', '.join(CATEGORICAL)}."]
    least = column.min_frequency if column and column.min_frequency else spec.min_frequency
    most = column.max_categories if column and column.max_categories else spec.max_categories
    order = np.lexsort((distinct, -counts))                   # most frequent first
    kept = [str(distinct[i]) for i in order if counts[i] >= least][:most]
    entry = {"name": name, "kind": choice.kind, "reason": choice.reason,
             "encoding": encoding, "categories": sorted(kept, key=_natural),
             "other": int(len(distinct) - len(kept)), "missing_rows": int((texts == "").sum())}
    if encoding == "hash":
        entry["hash_bins"] = column.hash_bins if column is not None else 64
    return entry, []


def _natural(text: str) -> tuple[int, Any]:
    """Numbers in numeric order, before text; the missing category ('') first."""
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def fit_date(table: Table, choice: Choice, rows: np.ndarray, column: ColumnSpec | None,
             marks: frozenset[str]) -> tuple[dict, list[str]]:
    """The fill (the median training date) and the training years' mean and spread."""
    name, values = choice.name, table.columns[choice.name]
    days, bad = as_days(values, marks)
    problems = _parse_problems(table, name, bad, rows, values, "a date")
    if problems:
        return {}, problems
    train = days[rows]
    missing = np.isnan(train)
    fill = float(np.median(train[~missing])) if (~missing).any() else 0.0
    filled = np.where(missing, fill, train)
    years = np.floor(filled).astype("datetime64[D]").astype("datetime64[Y]").astype(
        np.int64) + 1970
    std = float(np.std(years))
    return {"name": name, "kind": choice.kind, "reason": choice.reason,
            "encoding": "cyclic" if column is not None and column.cyclic else "parts",
            "fill": fill, "year_mean": float(np.mean(years)), "year_std": std or 1.0,
            "missing_rows": int(missing.sum()),
            "indicator": bool(missing.any()) and (column is None or column.indicator)}, []


def fit_text(table: Table, choice: Choice, rows: np.ndarray, column: ColumnSpec | None,
             marks: frozenset[str]) -> tuple[dict, list[str]]:
    """The vocabulary (and IDF weights) `TextVectorization` adapts on the training rows."""
    name = choice.name
    encoding = column.encoding if column is not None and column.encoding != "auto" \
        else "multi_hot"
    if encoding not in TEXT:
        return {}, [f"data.columns.{name}.encoding: {encoding} is for categorical columns; "
                    f"a text column takes {', '.join(TEXT)}."]
    spec = column or ColumnSpec()
    texts = as_strings(table.columns[name][rows], marks)
    vocabulary, idf = text_vocabulary(texts, encoding, spec.max_tokens, spec.ngrams,
                                      spec.min_frequency or 2)
    entry = {"name": name, "kind": "text", "reason": choice.reason, "encoding": encoding,
             "ngrams": spec.ngrams, "vocabulary": vocabulary, "idf_weights": idf,
             "missing_rows": int((texts == "").sum())}
    if encoding == "sequence":
        entry["sequence_length"] = spec.sequence_length
    return entry, []


def fit_column(table: Table, choice: Choice, rows: np.ndarray,
                spec: PreprocessingSpec, column: ColumnSpec | None,
                marks: frozenset[str]) -> tuple[dict[str, Any], list[str]]:
    """One column fitted by its kind: its entry (none for a dropped one) and problems."""
    name, values = choice.name, table.columns[choice.name]
    if choice.kind == "array":
        if values.dtype.kind not in "iufb":
            return {}, [f"array {name!r} must be numeric, not {values.dtype}."]
        check_column(table, name, numeric=True)
        entry = fit_numeric(name, values, rows, spec, "array")
        entry.update(reason=choice.reason, encoding=spec.numeric)
        return entry, []
    if choice.kind in DROPPED:
        return {}, []
    if choice.kind == "numeric" or (choice.kind == "binary" and choice.numbers):
        return fit_scalar(table, choice, rows, spec, column, marks)
    if choice.kind in ("categorical", "binary"):
        return fit_categories(table, choice, rows, spec, column, marks)
    if choice.kind in ("date", "datetime"):
        return fit_date(table, choice, rows, column, marks)
    return fit_text(table, choice, rows, column, marks)


def text_vocabulary(texts: np.ndarray, encoding: str, max_tokens: int, ngrams: int,
                    min_rows: int = 2) -> tuple[list[str], list[float] | None]:
    """The vocabulary (without the OOV token) and, for tf_idf, the IDF weights that
    `TextVectorization` adapts on `texts`, less the tokens found in fewer than `min_rows`
    rows (a token of one row teaches nothing that carries to another)."""
    keras = _keras.keras()
    sequence = encoding == "sequence"
    ngram = ngrams if ngrams > 1 else None
    layer = keras.layers.TextVectorization(max_tokens=max_tokens,
                                           output_mode="int" if sequence else encoding,
                                           ngrams=ngram)
    layer.adapt(texts)
    vocabulary = [str(v) for v in layer.get_vocabulary()[2 if sequence else 1:]]
    weights = np.asarray(layer._lookup_layer.idf_weights)[1:] if encoding == "tf_idf" \
        else None                                           # Keras keeps them there only
    if vocabulary and min_rows > 1:
        counter = keras.layers.TextVectorization(output_mode="multi_hot", ngrams=ngram,
                                                 vocabulary=vocabulary)
        rows = np.zeros(len(vocabulary) + 1)
        for start in range(0, len(texts), 4096):
            rows += np.asarray(counter(texts[start:start + 4096])).sum(axis=0)
        keep = rows[1:] >= min_rows
        vocabulary = [v for v, k in zip(vocabulary, keep, strict=True) if k]
        weights = None if weights is None else weights[keep]
    return vocabulary, None if weights is None else [float(w) for w in weights]


def width(entry: dict[str, Any]) -> int:
    """How many model-input columns a fitted feature takes."""
    kind, encoding = entry["kind"], entry.get("encoding")
    if kind == "array":
        return int(np.prod(entry["shape"], dtype=np.int64))
    if kind in ("numeric",) or (kind == "binary" and "scale" in entry):
        return 1 + int(entry.get("indicator", False))
    if kind in ("date", "datetime"):
        time = kind == "datetime"
        base = 2 + (6 + 2 * time if encoding == "cyclic" else 3 + time)
        return base + int(entry["indicator"])
    if kind == "text":
        return entry.get("sequence_length") or len(entry["vocabulary"]) + 1
    if encoding == "hash":
        return entry["hash_bins"]
    if encoding == "one_hot":
        return len(entry["categories"]) + 1
    return 1


def report(features: list[dict[str, Any]], dropped: list[dict[str, Any]]) -> list[dict]:
    """Each column's kind, encoding, input width and why."""
    shown = [{"column": e["name"], "kind": e["kind"], "encoding": e.get("encoding", ""),
              "width": width(e), "why": e.get("reason", "")} for e in features]
    return shown + [{"column": d["name"], "kind": d["kind"], "encoding": "dropped",
                     "width": 0, "why": d["reason"]} for d in dropped]

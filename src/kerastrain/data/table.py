"""A `Table`: named columns of equal length, read from CSV, Parquet, NPZ or NPY files.

A column is a NumPy array whose first axis is the row: 1-D for tabular data (float or
string), N-D for arrays such as images. No pandas: the readers keep control of every
error message (file, column, first offending row).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerastrain.errors import DataError, KeyProblem, did_you_mean

MISSING_TOKENS = {"", "na", "nan", "null", "none", "n/a"}


@dataclass
class Table:
    """Columns by name, in order; `origin` names the file for messages."""

    columns: dict[str, np.ndarray]
    origin: str = "<data>"
    header_lines: int = 0  # lines before the first row (CSV header), to report file lines
    numeric_hint: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"{self.origin}: columns have different numbers of rows: {lengths}.")

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def row_ref(self, row: int) -> str:
        """'row 7' (and its file line for text files)."""
        if self.header_lines:
            return f"row {row + 1} (line {row + 1 + self.header_lines})"
        return f"row {row}"

    def no_column(self, ref: str | int, what: str = "column") -> str:
        """The one message for a column the table lacks: the closest names, then all."""
        if isinstance(ref, int):
            return (f"no {what} {ref} in {self.origin}: the index is out of range "
                    f"({len(self.names)} columns: {', '.join(self.names)}).")
        return (f"no {what} {ref!r} in {self.origin}.{did_you_mean(ref, self.names)}"
                f"  Columns: {', '.join(self.names)}.")

    def column(self, name: str, what: str = "column") -> np.ndarray:
        if name not in self.columns:
            raise DataError(self.no_column(name, what))
        return self.columns[name]

    def resolve(self, ref: str | int) -> str:
        """A column name from a name or a 0-based index."""
        if isinstance(ref, int):
            if not -len(self.names) <= ref < len(self.names):
                raise DataError(self.no_column(ref))
            return self.names[ref]
        self.column(ref)
        return ref

    def resolve_at(self, ref: str | int, path: tuple) -> str:
        """`resolve` for a column named in the config: a miss is a problem at `path`."""
        try:
            return self.resolve(ref)
        except DataError:
            raise KeyProblem(path, self.no_column(ref)) from None


def fingerprint_columns(table: Table, names: list[str]) -> str:
    """A hash of the named columns, so a later command can tell if the data changed.

    SHA-256 (hex) over each column's name, dtype and shape, then its values: numeric
    arrays are hashed straight from their buffer, without a copy (a non-contiguous one in
    slices of a few MiB), strings as their text joined by a unit separator."""
    digest = hashlib.sha256()
    for name in names:
        values = table.columns[name]
        digest.update(name.encode())
        if values.dtype == object:
            digest.update("\x1f".join(map(str, values)).encode())
            continue
        digest.update(f"\x1f{values.dtype.str}{values.shape}\x1f".encode())
        if values.flags.c_contiguous:
            digest.update(values)
            continue
        step = max(1, (4 << 20) // max(1, values[:1].nbytes))
        for start in range(0, len(values), step):
            digest.update(np.ascontiguousarray(values[start:start + step]))
    return digest.hexdigest()


def _parse_column(values: list[str]) -> tuple[np.ndarray, bool]:
    """Floats where every non-missing value parses, else strings; and whether numeric."""
    out = np.empty(len(values), dtype=np.float64)
    for i, text in enumerate(values):
        token = text.strip()
        if token.lower() in MISSING_TOKENS:
            out[i] = np.nan
            continue
        try:
            out[i] = float(token)
        except ValueError:
            return np.array([v.strip() for v in values], dtype=object), False
    return out, True


def read_csv(path: Path, delimiter: str = ",") -> Table:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=delimiter))
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it as CSV: {exc}") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header line and at least one row.")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path}: line 1: the column name(s) {', '.join(dup)} appear twice.")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {i} has {len(row)} fields; the header has "
                            f"{len(header)}.")
    columns, hints = {}, {}
    for j, name in enumerate(header):
        columns[name], hints[name] = _parse_column([r[j] for r in rows[1:]])
    return Table(columns, str(path), header_lines=1, numeric_hint=hints)


def read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: "
                        "pip install 'kerastrain[parquet]'.") from None
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except Exception as exc:  # pyarrow raises its own error types
        raise DataError(f"{path}: cannot read it as Parquet: {exc}") from None
    columns = {}
    for name in table.column_names:
        values = table.column(name).to_numpy(zero_copy_only=False)
        if values.dtype.kind in "iufb":
            columns[name] = values.astype(np.float64)
        else:
            columns[name] = np.array([None if v is None else str(v) for v in values], dtype=object)
    return Table(columns, str(path))


def read_npz(path: Path) -> Table:
    try:
        with np.load(path, allow_pickle=False) as archive:
            columns = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as NPZ: {exc}") from None
    if not columns:
        raise DataError(f"{path}: the archive holds no arrays.")
    return Table(columns, str(path))


def read_npy(path: Path, name: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as NPY ({name}): {exc}") from None


READERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}


def read_file(path: str | Path, delimiter: str | None = None) -> Table:
    """Read a data file by its extension (CSV, TSV, Parquet, NPZ)."""
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown data file type {path.suffix!r}; "
                        f"use one of {', '.join(sorted(READERS))}.")
    if kind == "csv":
        return read_csv(path, delimiter or ("\t" if path.suffix.lower() == ".tsv" else ","))
    if kind == "parquet":
        return read_parquet(path)
    return read_npz(path)

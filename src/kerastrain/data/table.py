"""A `Table`: named columns of equal length, read from CSV, Parquet, NPZ or NPY files.

A column is a NumPy array whose first axis is the row: 1-D for tabular data (float or
string), N-D for arrays such as images. No pandas: the readers keep control of every
error message (file, column, first offending row).
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerastrain.data.filearray import FileArray
from kerastrain.data.images import ImageFiles
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
                f" Columns: {', '.join(self.names)}.")

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
    arrays are hashed straight from their buffer, without a copy (a non-contiguous one, or
    one left in its file, in slices of a few MiB), strings as their text joined by a unit
    separator, an image folder's images as their files' digests."""
    digest = hashlib.sha256()
    for name in names:
        values = table.columns[name]
        digest.update(name.encode())
        if isinstance(values, ImageFiles):
            digest.update(values.fingerprint())
            continue
        if values.dtype == object:
            digest.update("\x1f".join(map(str, values)).encode())
            continue
        digest.update(f"\x1f{values.dtype.str}{values.shape}\x1f".encode())
        if not isinstance(values, FileArray) and values.flags.c_contiguous:
            digest.update(values)
            continue
        step = max(1, (4 << 20) // max(1, values[:1].nbytes))
        for start in range(0, len(values), step):
            digest.update(np.ascontiguousarray(values[start:start + step]))
    return digest.hexdigest()


def _parse_column(values: list[str]) -> tuple[np.ndarray, bool]:
    """Floats where every non-missing value parses, else strings; and whether numeric."""
    try:  # the common case, all numbers, parsed at once (float()'s rules, as below)
        return np.array(values, dtype=np.float64), True
    except ValueError:
        pass
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


DELIMITERS = (",", ";", "\t", "|")


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading BOM dropped); binary or other encodings refused
    with the line of the first bad byte."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror or exc}.") from None
    if b"\x00" in data[:65536]:
        raise DataError(f"{path}: is a binary file, not CSV text. Give a CSV file, or the "
                        "file's own format: data.source.type parquet, npz or npy in a config, "
                        "a .parquet or .npz file for evaluate and predict.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte "
                        f"0x{data[exc.start]:02x}). Save the file as UTF-8.") from None


def _check_header(path: Path, header: list[str], delimiter: str) -> None:
    """Column names present and unique; one column that looks separated by another
    character means the wrong delimiter."""
    if len(header) == 1:
        others = [d for d in DELIMITERS if d != delimiter and d in header[0]]
        if others:
            raise DataError(f"{path}: line 1 reads as one column, {header[0]!r}: the file looks "
                            f"separated by {others[0]!r}, not {delimiter!r}. Set "
                            f"data.source.delimiter: {others[0]!r} in the config (evaluate and "
                            "predict read .csv files separated by commas, .tsv by tabs).")
    unnamed = [j + 1 for j, name in enumerate(header) if not name]
    if unnamed:
        raise DataError(f"{path}: line 1: column {unnamed[0]} of the header has no name; "
                        "every column needs one.")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path}: line 1: the column name(s) {', '.join(dup)} appear twice.")


def read_csv(path: Path, delimiter: str = ",") -> Table:
    header, rows = csv_cells(path, delimiter)
    columns, hints = {}, {}
    for j, name in enumerate(header):
        columns[name], hints[name] = _parse_column([r[j] for r in rows])
    return Table(columns, str(path), header_lines=1, numeric_hint=hints)


def csv_cells(path: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    """The header (names stripped) and the rows' cells as text, empty lines skipped."""
    text = _read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"{path}: cannot read it as CSV: {exc}") from None
    rows = [r for r in rows if r]
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header line and rows.")
    if len(rows) < 2:
        raise DataError(f"{path}: has a header line but no rows.")
    header = [h.strip() for h in rows[0]]
    _check_header(path, header, delimiter)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {i} has {len(row)} fields; the header has "
                            f"{len(header)}.")
    return header, rows[1:]


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
    if table.num_rows == 0:
        raise DataError(f"{path}: has no rows.")
    columns = {}
    for name in table.column_names:
        values = table.column(name).to_numpy(zero_copy_only=False)
        if values.dtype.kind in "iufb":
            columns[name] = values.astype(np.float64)
        else:
            columns[name] = np.array([None if v is None else str(v) for v in values], dtype=object)
    return Table(columns, str(path))


def _check_arrays(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Every array has rows (a first axis); the Table checks that their counts agree."""
    if not columns:
        raise DataError(f"{path}: the archive holds no arrays.")
    for name, values in columns.items():
        if values.ndim == 0:
            raise DataError(f"{path}: array {name!r} is a single value (0-d); every array "
                            "needs one entry per row along its first axis.")
        if len(values) == 0:
            raise DataError(f"{path}: array {name!r} has no rows.")


def read_npz(path: Path) -> Table:
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: holds one NPY array, not an NPZ archive of named "
                            "arrays; use data.source.type: npy, or save it with numpy.savez.")
        with archive:
            columns = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable NPZ archive (as numpy.savez writes): "
                        f"{_numpy_reason(exc)}") from None
    _check_arrays(path, columns)
    return Table(columns, str(path))


def _numpy_reason(exc: Exception) -> str:
    """NumPy's reason, except that its advice to allow pickles (which can run code) is
    replaced by what the file is not."""
    if "pickle" in str(exc):
        return "neither a NumPy file nor an archive of them (pickled objects are never loaded)."
    return str(exc)


def read_npy(path: Path, name: str) -> np.ndarray:
    """One NPY array, read into memory."""
    try:
        values = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read it as NPY ({name}): {_numpy_reason(exc)}") from None
    if not isinstance(values, np.ndarray):
        values.close()
        raise DataError(f"{path}: holds an NPZ archive, not one NPY array ({name}); use "
                        "data.source.type: npz.")
    _check_arrays(path, {name: values})
    return values


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

"""CSV and Parquet files streamed (`stream: true`): one pass over the file, a chunk of rows
(CSV) or a record batch (Parquet) at a time, writes each numeric column as raw float64
to a cache folder; training then reads them a batch of rows at a time (`FileArray`), as
an NPY file. Text columns (category names, labels) are kept in memory, one string per
row, as reading the file whole would.

The cache is `$KERASTRAIN_CACHE` (default `$XDG_CACHE_HOME/kerastrain/tables`, else
`~/.cache/kerastrain/tables`), one folder per file named by a hash of its path and of
its size and modification time: a file read again is not parsed again; a changed file
is parsed anew and its old folder removed. A folder is written under a temporary name
and renamed when complete, so a failed pass leaves nothing behind.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kerastrain.data.filearray import FileArray, Segment
from kerastrain.data.table import Table, _check_header, _parse_column
from kerastrain.errors import DataError

VERSION = 1
CHUNK_ROWS = 1 << 16


def cache_root() -> Path:
    if os.environ.get("KERASTRAIN_CACHE"):
        return Path(os.environ["KERASTRAIN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kerastrain" / "tables"


def _folder(path: Path, kind: str, delimiter: str) -> Path:
    try:
        state = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file.") from None
    if not path.is_file():
        raise DataError(f"{path}: is not a data file.")
    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    what = hashlib.sha256(f"{state.st_size}\0{state.st_mtime_ns}\0{kind}\0{delimiter}\0"
                          f"{VERSION}".encode()).hexdigest()[:16]
    return cache_root() / f"{where}-{what}"


def cached_table(path: Path, kind: str, delimiter: str = ",") -> Table:
    """The table of a CSV or Parquet file, its numeric columns left in the cache."""
    folder = _folder(path, kind, delimiter)
    if not (folder / "manifest.json").exists():
        _write(path, kind, delimiter, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    columns: dict[str, Any] = {}
    for entry in manifest["columns"]:
        if "text" in entry:
            columns[entry["name"]] = np.array(
                json.loads((folder / entry["text"]).read_text()), dtype=object)
        else:
            columns[entry["name"]] = FileArray(
                [Segment(str(folder / entry["file"]), 0, manifest["rows"])], np.float64, ())
    return Table(columns, str(path), header_lines=manifest["header_lines"])


def _write(path: Path, kind: str, delimiter: str, folder: Path) -> None:
    """One pass over the file into `folder` (written whole, or not at all)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        chunks = _csv_chunks(path, delimiter) if kind == "csv" else _parquet_chunks(path)
        rows, columns = _store(path, chunks, partial)
        if not rows:
            raise DataError(f"{path}: has a header line but no rows." if kind == "csv"
                            else f"{path}: has no rows.")
        (partial / "manifest.json").write_text(json.dumps(
            {"rows": rows, "columns": columns, "header_lines": int(kind == "csv")}))
        for old in folder.parent.glob(folder.name.split("-")[0] + "-*"):
            if ".partial-" not in old.name and old != folder:  # the file's earlier versions
                shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(partial, folder)
        except OSError:  # another process wrote it meanwhile: theirs is the same
            if not (folder / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _store(path: Path, chunks: Iterator[dict[str, np.ndarray]],
           folder: Path) -> tuple[int, list[dict[str, str]]]:
    """Numeric columns appended to raw float64 files, text columns gathered; the row count
    and the manifest's column entries."""
    rows, files, texts, entries = 0, {}, {}, []
    try:
        for chunk in chunks:
            if not entries:
                for j, (name, values) in enumerate(chunk.items()):
                    numeric = values.dtype != object
                    entries.append({"name": name, "file" if numeric else "text":
                                    f"c{j}.f64" if numeric else f"c{j}.json"})
                    if numeric:
                        files[name] = open(folder / f"c{j}.f64", "wb")
                    else:
                        texts[name] = []
            for name, values in chunk.items():
                if name in files:
                    if values.dtype == object:
                        raise DataError(
                            f"{path}: column {name!r} holds numbers in its first rows and text "
                            f"in rows {rows + 1} to {rows + len(values)}; a streamed file "
                            "needs each column numeric throughout or text throughout. Fix the "
                            "column, or leave stream out to read the file into memory.")
                    files[name].write(np.ascontiguousarray(values, np.float64).tobytes())
                else:
                    texts[name].extend(None if v is None else str(v) for v in values)
            rows += len(next(iter(chunk.values())))
    finally:
        for handle in files.values():
            handle.close()
    for entry in entries:
        if "text" in entry:
            (folder / entry["text"]).write_text(json.dumps(texts[entry["name"]]))
    return rows, entries


def _csv_chunks(path: Path, delimiter: str) -> Iterator[dict[str, np.ndarray]]:
    """The file's columns, CHUNK_ROWS rows at a time, parsed as `read_csv` parses them."""
    with open(path, "rb") as raw:
        if b"\x00" in raw.read(65536):
            raise DataError(f"{path}: is a binary file, not CSV text.")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [h.strip() for h in next((r for r in reader if r), [])]
            if not header:
                raise DataError(f"{path}: the file is empty; it needs a header line and rows.")
            _check_header(path, header, delimiter)
            block: list[list[str]] = []
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}: line {reader.line_num} has {len(row)} fields; "
                                    f"the header has {len(header)}.")
                block.append(row)
                if len(block) == CHUNK_ROWS:
                    yield _parsed(header, block)
                    block = []
            if block:
                yield _parsed(header, block)
        except UnicodeDecodeError:
            raise DataError(f"{path}: line {reader.line_num + 1} is not UTF-8 text. Save the "
                            "file as UTF-8.") from None
        except csv.Error as exc:
            raise DataError(f"{path}: cannot read it as CSV: {exc}") from None


def _parsed(header: list[str], block: list[list[str]]) -> dict[str, np.ndarray]:
    return {name: _parse_column([r[j] for r in block])[0] for j, name in enumerate(header)}


def _parquet_chunks(path: Path) -> Iterator[dict[str, np.ndarray]]:
    """The file's columns a record batch at a time: numbers as float64, others as text."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: "
                        "pip install 'kerastrain[parquet]'.") from None
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS)
        for batch in batches:
            chunk = {}
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                values = column.to_numpy(zero_copy_only=False)
                chunk[name] = values.astype(np.float64) if values.dtype.kind in "iufb" else \
                    np.array([None if v is None else str(v) for v in values], dtype=object)
            yield chunk
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises its own error types
        raise DataError(f"{path}: cannot read it as Parquet: {exc}") from None

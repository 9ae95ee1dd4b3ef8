"""File sources read as one table: a file, or shards (a folder or a glob pattern of files
of one type, one after another in name order), in memory or left in their files
(`stream: true`: `data/filearray.py`, and `data/tablecache.py` for CSV and Parquet)."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from kerastrain.config.schema import SourceSpec
from kerastrain.data.filearray import FileArray, concatenate, open_npy, open_npz
from kerastrain.data.table import Table, read_csv, read_npy, read_npz, read_parquet
from kerastrain.data.tablecache import cached_table
from kerastrain.errors import DataError

SUFFIXES = {"csv": (".csv", ".tsv"), "parquet": (".parquet", ".pq"), "npz": (".npz",),
            "npy": (".npy",)}
PATTERN = set("*?[")


def is_sharded(path: str | None) -> bool:
    """Whether `path` names several files: a folder, or a glob pattern."""
    return path is not None and (bool(PATTERN & set(path)) or Path(path).is_dir())


def shard_paths(path: str, kind: str) -> list[Path]:
    """The files `path` names, in name order: a folder's files of the type's extensions,
    a glob pattern's matches, or the one file."""
    if Path(path).is_dir():
        found = sorted(p for p in Path(path).iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES[kind])
        what = f"no {' or '.join(SUFFIXES[kind])} files in the folder {path}"
    elif PATTERN & set(path):
        found = sorted(Path(p) for p in glob.glob(path) if Path(p).is_file())
        what = f"no files match {path}"
    else:
        return [Path(path)]
    if not found:
        raise DataError(f"{what}: nothing to read as {kind} shards.")
    return found


def _one(path: Path, spec: SourceSpec) -> Table:
    """One file of a `csv`, `parquet` or `npz` source."""
    if spec.stream and spec.type == "npz":
        return Table(dict(open_npz(path)), str(path))
    if spec.stream:
        return cached_table(path, spec.type, spec.delimiter or ",")
    if spec.type == "csv":
        return read_csv(path, spec.delimiter or ",")
    return read_parquet(path) if spec.type == "parquet" else read_npz(path)


def _npy(features: Path, target: Path, stream: bool) -> Table:
    values = open_npy(features, "features") if stream else read_npy(features, "features")
    return Table({"features": values, "target": read_npy(target, "target")}, str(features))


def load_files(spec: SourceSpec) -> Table:
    """A `csv`, `parquet`, `npz` or `npy` source, of one file or of shards."""
    paths = shard_paths(str(spec.path), spec.type)
    if spec.type == "npy":
        targets = shard_paths(str(spec.target_path), "npy")
        if len(targets) != len(paths):
            raise DataError(f"{spec.path} names {len(paths)} feature files and "
                            f"{spec.target_path} {len(targets)} target files; give one target "
                            "file per features file (paired in name order).")
        tables = [_npy(p, t, bool(spec.stream)) for p, t in zip(paths, targets, strict=True)]
    else:
        tables = [_one(p, spec) for p in paths]
    if len(tables) == 1:
        return tables[0]
    first = tables[0]
    for table in tables[1:]:
        _same_columns(first, table)
    columns = {name: concatenate([t.columns[name] for t in tables]) for name in first.names}
    return Table(columns, f"{spec.path} ({len(tables)} files)",
                 numeric_hint=dict(first.numeric_hint))


def _same_columns(first: Table, table: Table) -> None:
    """Every shard has the first's columns, of the same kind and row shape."""
    if table.names != first.names:
        raise DataError(f"{table.origin}: a shard must have the columns of {first.origin} "
                        f"({', '.join(first.names)}); it has {', '.join(table.names)}.")
    for name in first.names:
        a, b = first.columns[name], table.columns[name]
        if a.shape[1:] != b.shape[1:] or (a.dtype == object) != (b.dtype == object) or \
                (isinstance(a, FileArray) and a.dtype != b.dtype):
            raise DataError(f"{table.origin}: column {name!r} is {_kind(b)} per row; in "
                            f"{first.origin} it is {_kind(a)}. Every shard needs the same.")


def _kind(values: np.ndarray | FileArray) -> str:
    text = "text" if values.dtype == object else str(values.dtype)
    return f"{text} {list(values.shape[1:])}" if values.ndim > 1 else text

"""Where predictions go: the output file checked before any work, then written atomically
as CSV, NPZ or Parquet by its extension."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from kerastrain.data.table import csv_cells
from kerastrain.errors import UserError
from kerastrain.rundir import atomic_path

OUTPUT_TYPES = (".csv", ".npz", ".parquet")


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse an output file that cannot be written, before any work: a type we do not
    write, a directory, an existing file (unless `overwrite`), a folder that cannot be made
    or written in."""
    if path.suffix.lower() not in OUTPUT_TYPES:
        raise UserError(f"{path}: predictions are written as .csv, .npz or .parquet; name a "
                        "file with one of those extensions.")
    if path.is_dir():
        raise UserError(f"{path} is a directory; name a file in it, e.g. "
                        f"{path / ('predictions' + path.suffix)}.")
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; choose another name, or replace it knowingly.",
                        option="overwrite")
    folder = path.parent.resolve()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{path}: {folder} is a file, so no folder can be made there; "
                        "choose another place for the predictions.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{path}: {folder} is not writable; choose another place for the "
                        "predictions.")


def kept_as_written(path: Path, kept: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The `keep` columns of a CSV/TSV input as its cells' text (an id `00123` stays
    `00123`, `1000` is not written back as `1000.0`); other inputs' columns as read."""
    numeric = [n for n, v in kept.items() if v.dtype.kind == "f"]
    if not numeric or path.suffix.lower() not in (".csv", ".tsv"):
        return kept
    header, rows = csv_cells(path, "\t" if path.suffix.lower() == ".tsv" else ",")
    texts = {n: np.array([r[header.index(n)].strip() for r in rows], dtype=object)
             for n in numeric}
    return {n: texts.get(n, v) for n, v in kept.items()}


def write_table(path: Path, columns: dict[str, np.ndarray]) -> None:
    """CSV, NPZ or Parquet by extension, written atomically: a failure leaves no file."""
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_TYPES:
        raise UserError(f"{path}: predictions are written as .csv, .npz or .parquet; name a "
                        "file with one of those extensions.")
    try:
        _write_table(path, suffix, columns)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the predictions there: "
                        f"{exc.strerror or exc}.") from None


def _write_table(path: Path, suffix: str, columns: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(list(columns))
                for row in zip(*columns.values(), strict=True):
                    writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating))
                                     else v for v in row])
        elif suffix == ".npz":
            with open(tmp, "wb") as handle:
                np.savez(handle, **{k: (v.astype(str) if v.dtype == object else v)
                                    for k, v in columns.items()})
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise UserError("writing Parquet needs pyarrow: "
                                "pip install 'kerastrain[parquet]'.") from None
            pq.write_table(pa.table({k: (v.astype(str) if v.dtype == object else v)
                                     for k, v in columns.items()}), tmp)

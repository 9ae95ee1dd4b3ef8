"""Folders of samples, one subfolder per class (`keras.utils.image_dataset_from_directory`'s
layout): `image_folder` (PNG, JPEG, BMP, GIF) and `text_folder` (one .txt per sample).

A folder becomes a `FolderTable`: a row per file, in the order of the sorted class
folders and then of the sorted file paths, the label (the class folder's name) in
`label` and the sample in `image` or `text`. Splits, folds and preprocessing then work on
the rows as on any table, so a fold is a set of files. The `image` column is an
`ImageFiles` (`images.py`): the files' paths, each header checked, decoded only when the
rows are used (`imagestream.py` streams them into Keras); text is read whole.

`read_rows` reads what `evaluate --data` and `predict` are given for a run on a folder:
a class folder (labelled), a folder of files, or one file; the file names go in the
output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerastrain.config.schema import SourceSpec
from kerastrain.data.images import Decoding, ImageFiles
from kerastrain.data.table import Table, read_file
from kerastrain.errors import DataError

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEXT_SUFFIXES = (".txt",)
FILE_COLUMN = "file"


@dataclass
class FolderTable(Table):
    """A table read from files: `files` names each row's file (relative to `root`)."""

    files: list[str] = field(default_factory=list)


def is_folder_source(spec: SourceSpec) -> bool:
    return spec.type in ("image_folder", "text_folder")


def _suffixes(spec: SourceSpec) -> tuple[str, ...]:
    return IMAGE_SUFFIXES if spec.type == "image_folder" else TEXT_SUFFIXES


def _files_under(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files below `folder` with these suffixes, sorted as paths sort (part by part;
    os.walk: no stat per file)."""
    found = [Path(top, name) for top, _, names in os.walk(folder) for name in names
             if os.path.splitext(name)[1].lower() in suffixes]
    return sorted(found, key=lambda path: path.parts)   # in C: 20,000 files in 0.02 s


def class_files(root: Path, spec: SourceSpec) -> tuple[list[Path], list[str]]:
    """Every sample file under `root`'s class folders and its class."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (a {spec.type} source is a folder with one "
                        "subfolder per class).")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    names = list(spec.class_names) if spec.class_names else found
    absent = [n for n in names if n not in found]
    if absent:
        raise DataError(f"{root}: no class folder {', '.join(map(repr, absent))} "
                        f"(class_names); its subfolders: {', '.join(found) or 'none'}.")
    files, labels = [], []
    for name in names:
        inside = _files_under(root / name, _suffixes(spec))
        files += inside
        labels += [name] * len(inside)
    if len(set(labels)) < 2:
        raise DataError(f"{root}: {spec.type} needs at least two class subfolders holding "
                        f"{'/'.join(_suffixes(spec))} files; found "
                        f"{len(files)} files in {len(set(labels))}.")
    return files, labels


def read_folder(spec: SourceSpec) -> FolderTable:
    """The `image_folder` or `text_folder` source: a row per file, labelled."""
    root = Path(spec.path)
    files, labels = class_files(root, spec)
    table = _samples(spec, files, f"{spec.type} {root}", root)
    table.columns["label"] = np.asarray(labels, dtype=object)
    return table


def _samples(spec: SourceSpec, files: list[Path], origin: str, root: Path) -> FolderTable:
    if spec.type == "image_folder":
        columns = {"image": ImageFiles.read(files, Decoding.of(spec))}
    else:
        columns = {"text": np.asarray([_read_text(f) for f in files], dtype=object)}
    under = "" if root == Path() else os.path.join(str(root), "")   # as relative_to cuts
    names = [name[len(under):] if name.startswith(under) else name for name in map(str, files)]
    return FolderTable(columns, origin, files=names)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror}.") from None


def read_rows(path: str | Path | list[Path], spec: SourceSpec, labelled: bool) -> Table:
    """New rows for a run trained on `spec`: for a folder source, a class folder when
    `labelled` (evaluate), else a folder of sample files or files (predict), with the
    file names in `FolderTable.files`; any other source reads one data file."""
    if isinstance(path, list):
        if not is_folder_source(spec):
            raise DataError(f"{len(path)} input files: a run on a {spec.type} source "
                            "predicts the rows of one data file.")
        lost = [str(p) for p in path if not Path(p).is_file()]
        if lost:
            raise DataError(f"{lost[0]}: no such file.")
        files = [Path(p) for p in path]
        return _samples(spec, files, f"{len(files)} files", Path())
    path = Path(path)
    if not is_folder_source(spec):
        return read_file(path)
    if labelled:
        return read_folder(spec.model_copy(update={"path": str(path)}))
    if path.is_dir():
        files = _files_under(path, _suffixes(spec))
        if not files:
            raise DataError(f"{path}: no {'/'.join(_suffixes(spec))} files in this folder.")
        return _samples(spec, files, str(path), path)
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder.")
    return _samples(spec, [path], str(path), path.parent)

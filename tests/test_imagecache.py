"""Decoded images kept while a model trains (`data/imagecache.py`): the first pass over a
stream decodes each file and keeps its pixels, later passes read those back (the files
themselves are no longer read), with the numbers decoding gives; nothing is kept outside
training, with too little disk space, or past the training; a killed process's folder
is removed by the next one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli
from test_folders import folder_source, image_config, image_folder
from test_imagestream import _experiment


def _stream(tmp_path: Path):
    experiment = _experiment(tmp_path)
    rows = experiment.plan.folds[0].fit_rows
    stream, y = experiment.arrays(experiment.preprocessor(rows), rows, "training rows")
    return stream, y


def _batches(data) -> list[np.ndarray]:
    return [x.numpy() for x, _ in data]


def _folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("kerastrain-decoded-*")}


def test_later_passes_read_the_kept_images_not_the_files(tmp_path: Path) -> None:
    from kerastrain.data.imagecache import decoded_images

    stream, y = _stream(tmp_path)
    decoded = _batches(stream.keras_data(y, 5))      # outside training: decoded each time
    before = _folders()
    with decoded_images():
        data = stream.keras_data(y, 5, shuffle_seed=3)
        first = _batches(data)
        made = _folders() - before
        assert len(made) == 1
        kept = list((Path(tempfile.gettempdir()) / made.pop()).glob("*.u8"))
        image = int(np.prod(stream.files.shape[1:]))
        assert [p.stat().st_size for p in kept] == [len(stream) * image]
        for path in stream.files.paths:               # the files are gone: read back only
            Path(path).unlink()
        second = _batches(data)
        again = _batches(stream.keras_data(y, 5))     # another pipeline of the same stream
    assert _folders() == before                       # removed when training ends
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(decoded))
    # the same images, in each pass's own order (reshuffled): equal as a set of rows
    flat = [np.concatenate(b).reshape(len(stream), -1) for b in (first, second, decoded)]
    for rows in flat[:2]:
        assert sorted(map(bytes, rows)) == sorted(map(bytes, flat[2]))
    assert not np.array_equal(flat[0], flat[1])       # reshuffled between passes
    with pytest.raises(Exception, match="NotFound|No such file"):
        _batches(stream.keras_data(y, 5))             # outside training: the files again


def test_nothing_is_kept_without_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from kerastrain.data import imagecache

    stream, y = _stream(tmp_path)
    usage = shutil.disk_usage(tempfile.gettempdir())
    needed = len(stream) * 6 * 6 * 3
    monkeypatch.setattr(imagecache.shutil, "disk_usage",
                        lambda path: usage._replace(free=2 * needed - 1))
    with imagecache.decoded_images():
        _batches(stream.keras_data(y, 5))
        assert not list(imagecache.kept_folder().glob("*.u8"))
    monkeypatch.setattr(imagecache.shutil, "disk_usage",
                        lambda path: usage._replace(free=2 * needed))
    with imagecache.decoded_images():
        _batches(stream.keras_data(y, 5))
        assert stream._kept[1].kept.all() and len(list(imagecache.kept_folder().glob("*.u8"))) == 1
    with imagecache.decoded_images(enabled=False):
        assert imagecache.kept_folder() is None


def test_a_killed_process_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    """A folder whose lock is free (its process was killed) is removed when the next
    training starts; one whose lock a live process holds (here another open of it) is not."""
    import fcntl
    import shutil

    from kerastrain.data import imagecache

    where = Path(tempfile.gettempdir())
    left, live = (Path(tempfile.mkdtemp(prefix=imagecache.PREFIX, dir=where))
                  for _ in range(2))
    for folder in (left, live):
        (folder / imagecache.LOCK).touch()
        (folder / "0.u8").write_bytes(b"x")
    held = os.open(live / imagecache.LOCK, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with imagecache.decoded_images():   # any training, of images or not
            assert not left.exists() and live.exists()
            made = imagecache.kept_folder()
            assert made.exists()
            with imagecache.decoded_images():   # a second training beside it: its lock
                imagecache.kept_folder()          # held by this process, it stays
                assert made.exists()
        assert not made.exists()
    finally:
        os.close(held)
        shutil.rmtree(live, ignore_errors=True)


def test_a_fit_keeps_its_images_and_leaves_no_folder(cli: Cli, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`fit` keeps the images of its training and validation streams (a kept loader each,
    of their sizes: splits.json's; the checks' probe and the test split, read once, are
    not kept), the same numbers as ever (test_folders.py holds them
    equal to an NPZ's), and removes them when it ends."""
    from kerastrain.data import imagecache, imagestream

    image_folder(tmp_path / "imgs")
    asked: list[int] = []
    real = imagecache.kept_images

    def recorded(count, shape):
        made = real(count, shape)
        asked.append(count if made is not None else -count)
        return made

    monkeypatch.setattr(imagestream, "kept_images", recorded)
    before = _folders()
    result = cli("fit", image_config(tmp_path, folder_source(tmp_path / "imgs")))
    assert result.exit_code == 0, result.output
    assert _folders() == before
    run = next((tmp_path / "runs").iterdir())
    fold = json.loads((run / "splits.json").read_text())["folds"][0]
    kept = sorted(count for count in asked if count > 0)  # not kept: the checks' probe
    assert kept == sorted([len(fold["train"]), len(fold["validation"])])

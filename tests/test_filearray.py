"""Sources left in their files (`stream: true`): rows read by explicit reads (`FileArray`),
NPZ members found in the archive, CSV and Parquet through the column cache, shards, and
the whole-column passes (checks, fingerprint, leakage hashes) a block at a time."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kerastrain.config.schema import SourceSpec
from kerastrain.data import filearray, tablecache
from kerastrain.data.filearray import FileArray, open_npy, open_npz
from kerastrain.data.leakage import row_ids
from kerastrain.data.shards import load_files
from kerastrain.data.table import Table, fingerprint_columns, read_csv, read_parquet
from kerastrain.data.values import check_column
from kerastrain.errors import DataError


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KERASTRAIN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def shards(folder: Path, parts: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30 * parts, 4, 3)).astype(np.float32)
    for i in range(parts):
        np.save(folder / f"x{i}.npy", x[30 * i:30 * (i + 1)])
    return x


def test_rows_read_from_the_file_equal_the_array(tmp_path: Path) -> None:
    """Any order, repeats, slices, masks and negative indices, across shard boundaries."""
    x = shards(tmp_path)
    mapped = filearray.concatenate([open_npy(tmp_path / f"x{i}.npy", "x") for i in range(3)])
    assert isinstance(mapped, FileArray) and mapped.shape == x.shape and len(mapped) == 90
    rows = np.random.default_rng(1).integers(0, 90, size=200)
    np.testing.assert_array_equal(mapped[rows], x[rows])
    np.testing.assert_array_equal(mapped[25:65], x[25:65])
    np.testing.assert_array_equal(mapped[::7], x[::7])
    np.testing.assert_array_equal(mapped[x[:, 0, 0] > 0], x[x[:, 0, 0] > 0])
    np.testing.assert_array_equal(mapped[-1], x[-1])
    np.testing.assert_array_equal(mapped[rows, 1:, 0], x[rows, 1:, 0])
    np.testing.assert_array_equal(np.asarray(mapped), x)
    assert [start for start, _ in mapped.blocks()] == [0]
    with pytest.raises(IndexError):
        mapped[np.array([90])]


def test_runs_of_rows_are_read_at_once(tmp_path: Path, monkeypatch) -> None:
    x = shards(tmp_path, 1)
    mapped = open_npy(tmp_path / "x0.npy", "x")
    reads = []
    real = os.preadv
    monkeypatch.setattr(filearray.os, "preadv", lambda *a: reads.append(a) or real(*a))
    np.testing.assert_array_equal(mapped[np.array([9, 3, 4, 5, 8, 20])], x[[9, 3, 4, 5, 8, 20]])
    assert len(reads) == 3  # 3-5, 8-9, 20, each row straight to its place
    monkeypatch.setattr(filearray, "IOV_MAX", 2)
    reads.clear()
    np.testing.assert_array_equal(mapped[np.array([9, 3, 4, 5, 8])], x[[9, 3, 4, 5, 8]])
    assert len(reads) == 3  # 3-4, 5, 8-9: at most IOV_MAX rows a read


def test_whole_column_passes_read_a_block_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """The checks, the fingerprint and the leakage ids of a column left in its file are
    those of the array in memory, read a few rows at a time, never whole."""
    x = shards(tmp_path, 1)
    x[17, 1, 2] = np.inf
    np.save(tmp_path / "x0.npy", x)
    monkeypatch.setattr(filearray, "BLOCK_BYTES", 100)
    monkeypatch.setattr(FileArray, "__array__", lambda *a, **k: pytest.fail("read whole"))
    mapped = Table({"x": open_npy(tmp_path / "x0.npy", "x")}, "x0.npy")
    memory = Table({"x": x}, "x0.npy")
    assert fingerprint_columns(mapped, ["x"]) == fingerprint_columns(memory, ["x"])
    np.testing.assert_array_equal(row_ids(mapped, ["x"]), row_ids(memory, ["x"]))
    with pytest.raises(DataError, match="infinite value at row 17 "):
        check_column(mapped, "x", numeric=True)


def test_leakage_ids_hash_each_block_in_steps(tmp_path: Path, monkeypatch) -> None:
    """A file's rows are hashed a block at a time, each block in steps of rows that need
    not divide it: the ids are the array's."""
    from kerastrain.data import leakage

    x = shards(tmp_path, 1)
    monkeypatch.setattr(filearray, "BLOCK_BYTES", 5 * 48)   # blocks of 5 rows of 48 bytes
    monkeypatch.setattr(leakage, "_CHUNK_WORDS", 12)        # steps of 2 rows
    mapped = Table({"x": open_npy(tmp_path / "x0.npy", "x")}, "x0.npy")
    np.testing.assert_array_equal(row_ids(mapped, ["x"]), row_ids(Table({"x": x}), ["x"]))


def test_the_checks_read_a_clean_column_once(tmp_path: Path, monkeypatch) -> None:
    """No missing value and no infinity is told in one pass over the file's rows; a
    column that holds one is still found and named at its row."""
    x = shards(tmp_path, 1)
    monkeypatch.setattr(filearray, "BLOCK_BYTES", 100)
    read = []
    real = FileArray.read
    monkeypatch.setattr(FileArray, "read", lambda self, rows: read.append(len(rows)) or
                        real(self, rows))
    check_column(Table({"x": open_npy(tmp_path / "x0.npy", "x")}, "x0.npy"), "x", numeric=True)
    assert sum(read) == len(x)
    x[11, 0, 1] = np.nan
    np.save(tmp_path / "x1.npy", x)
    with pytest.raises(DataError, match="missing value at row 11 "):
        check_column(Table({"x": open_npy(tmp_path / "x1.npy", "x")}, "x1.npy"), "x",
                     numeric=True)


def test_npz_members_are_read_in_place(tmp_path: Path) -> None:
    x = np.arange(60, dtype=np.float64).reshape(20, 3)
    y = np.arange(20, dtype=np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    columns = open_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(columns["x"][[5, 1]], x[[5, 1]])
    np.testing.assert_array_equal(np.asarray(columns["y"]), y)
    np.savez_compressed(tmp_path / "c.npz", x=x)
    with pytest.raises(DataError, match="compressed.*numpy.savez .uncompressed"):
        open_npz(tmp_path / "c.npz")


def test_a_cut_file_is_named(tmp_path: Path) -> None:
    shards(tmp_path, 1)
    data = (tmp_path / "x0.npy").read_bytes()
    (tmp_path / "x0.npy").write_bytes(data[:-50])
    with pytest.raises(DataError, match=r"x0.npy: x is cut short"):
        open_npy(tmp_path / "x0.npy", "x")
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as archive:
        archive.writestr("x.npy", b"not an npy header")
    with pytest.raises(DataError, match=r"bad.npz: cannot read array 'x' as NPY"):
        open_npz(tmp_path / "bad.npz")


CSV = "a,b,label\n1,2.5,cat\n2,,dog\n3,4.5,cat\n"


def test_a_streamed_csv_equals_the_file_read_whole(tmp_path: Path, cache: Path) -> None:
    """Numeric columns left in the cache, text in memory, missing values as NaN; the cache
    is reused while the file is unchanged and replaced when it changes."""
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    streamed = load_files(SourceSpec(type="csv", path=str(path), stream=True))
    whole = read_csv(path)
    assert isinstance(streamed.columns["a"], FileArray)
    for name in whole.names:
        np.testing.assert_array_equal(np.asarray(streamed.columns[name]), whole.columns[name])
    [folder] = cache.iterdir()
    made = (folder / "manifest.json").stat().st_mtime_ns
    load_files(SourceSpec(type="csv", path=str(path), stream=True))
    assert (folder / "manifest.json").stat().st_mtime_ns == made
    path.write_text(CSV + "4,5.5,dog\n")
    assert len(load_files(SourceSpec(type="csv", path=str(path), stream=True)).columns["a"]) == 4
    assert [p.name for p in cache.iterdir()] != [folder.name] and len(list(cache.iterdir())) == 1


def test_a_csv_column_that_turns_to_text_is_refused(tmp_path: Path, cache: Path,
                                                    monkeypatch) -> None:
    monkeypatch.setattr(tablecache, "CHUNK_ROWS", 2)
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4\nx,5\n")
    with pytest.raises(DataError, match="'a' holds numbers in its first rows and text in rows "
                                        "3 to 3"):
        load_files(SourceSpec(type="csv", path=str(path), stream=True))
    assert list(cache.iterdir()) == []  # nothing half-written


def test_a_streamed_parquet_equals_the_file_read_whole(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": [1, 2, None, 4], "b": [0.5, 1.5, 2.5, 3.5],
                      "label": ["x", None, "y", "x"]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=2)
    streamed = load_files(SourceSpec(type="parquet", path=str(tmp_path / "d.parquet"),
                                     stream=True))
    whole = read_parquet(tmp_path / "d.parquet")
    for name in whole.names:
        np.testing.assert_array_equal(np.asarray(streamed.columns[name]), whole.columns[name])


def test_shards_of_a_folder_or_a_glob_are_one_table(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    (tmp_path / "parts").mkdir()
    for i in range(2):
        np.savez(tmp_path / "parts" / f"p{i}.npz", x=x[5 * i:5 * (i + 1)],
                 y=np.arange(5) + 5 * i)
    for path, stream in ((tmp_path / "parts", True), (tmp_path / "parts" / "p*.npz", False)):
        table = load_files(SourceSpec(type="npz", path=str(path), stream=stream))
        assert isinstance(table.columns["x"], FileArray) == stream
        np.testing.assert_array_equal(np.asarray(table.columns["x"]), x)
        np.testing.assert_array_equal(np.asarray(table.columns["y"]), np.arange(10))
    np.savez(tmp_path / "parts" / "p2.npz", x=x[:3, :2], y=np.arange(3))
    with pytest.raises(DataError, match=r"p2.npz: column 'x' is float32 \[2\] per row"):
        load_files(SourceSpec(type="npz", path=str(tmp_path / "parts"), stream=True))
    with pytest.raises(DataError, match="no files match"):
        load_files(SourceSpec(type="npz", path=str(tmp_path / "none*.npz")))


def test_stream_is_the_one_key(tmp_path: Path) -> None:
    """`mmap` (last release's name, npy only) still reads as `stream`; both at once, or
    either on a source that cannot stream, is refused."""
    from conftest import iris_config, write_config
    from kerastrain.config import load_config
    from kerastrain.errors import ConfigError

    for source, said in (({"type": "npy", "path": "x.npy", "target_path": "y.npy",
                           "mmap": True, "stream": True}, "older name of stream"),
                         ({"type": "sklearn", "name": "iris", "mmap": True},
                          "takes no stream"),
                         ({"type": "sklearn", "name": "iris", "stream": True},
                          "takes no stream")):
        cfg = iris_config(tmp_path / "runs", data={"source": source})
        with pytest.raises(ConfigError, match=said):
            load_config(write_config(tmp_path / "c.yaml", cfg))
    np.save(tmp_path / "x.npy", np.zeros((4, 2), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(4, np.float32))
    cfg = iris_config(tmp_path / "runs", data={"source": {
        "type": "npy", "path": "x.npy", "target_path": "y.npy", "mmap": True}})
    assert load_config(write_config(tmp_path / "c.yaml", cfg)).config.data.source.stream is True


def test_short_reads_are_continued(tmp_path: Path, monkeypatch) -> None:
    """The kernel may return fewer bytes than asked: the read goes on where it stopped."""
    x = shards(tmp_path, 1)
    mapped = open_npy(tmp_path / "x0.npy", "x")
    real = os.preadv

    def short(fd: int, views: list, offset: int) -> int:
        first = memoryview(views[0])
        return real(fd, [first[:max(1, len(first) // 3)]], offset)

    monkeypatch.setattr(filearray.os, "preadv", short)
    np.testing.assert_array_equal(mapped[np.array([7, 2, 3, 29])], x[[7, 2, 3, 29]])
    np.testing.assert_array_equal(mapped[10:20], x[10:20])


def test_files_already_split_stay_in_their_files(tmp_path: Path) -> None:
    """data.source and data.test streamed: one table whose wide column reads from both."""
    from kerastrain.config.schema import DataSpec
    from kerastrain.data.presplit import load_parts

    x = np.arange(48, dtype=np.float32).reshape(12, 4)
    np.savez(tmp_path / "train.npz", x=x[:8], y=np.arange(8))
    np.savez(tmp_path / "test.npz", x=x[8:], y=np.arange(8, 12))
    data = DataSpec(source={"type": "npz", "path": str(tmp_path / "train.npz"), "stream": True},
                    test={"type": "npz", "path": str(tmp_path / "test.npz"), "stream": True})
    table, parts = load_parts(data, 0)
    assert isinstance(table.columns["x"], FileArray) and len(table.columns["x"].segments) == 2
    np.testing.assert_array_equal(table.columns["x"][[11, 0, 8]], x[[11, 0, 8]])
    np.testing.assert_array_equal(parts["test"], np.arange(8, 12))


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux's /proc")
def test_reading_every_row_leaves_the_process_memory_as_it_was(tmp_path: Path) -> None:
    """A 64 MiB file read whole a block at a time, and in shuffled batches: the resident
    memory hardly moves; a memory map of it (the control) grows by the file's size."""
    rows = 16_384
    with open(tmp_path / "big.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (rows, 1024)})
        for _ in range(16):
            handle.write(np.ones((rows // 16, 1024), np.float32).tobytes())
    column = open_npy(tmp_path / "big.npy", "x")
    before = _resident_mib()
    total = sum(float(block.sum()) for _, block in column.blocks())
    for positions in np.array_split(np.random.default_rng(0).permutation(rows), 512):
        column[positions]
    assert total == rows * 1024 and _resident_mib() - before < 16
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    before = _resident_mib()
    assert sum(float(mapped[k:k + 1024].sum()) for k in range(0, rows, 1024)) == total
    assert _resident_mib() - before > 48


def test_a_file_opened_by_two_threads_at_once_keeps_one_descriptor(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """The fingerprint's thread and the checks may open a file at the same moment: the
    descriptor stored first is the one kept, and the other is closed, not leaked."""
    shards(tmp_path, 1)
    path = str(tmp_path / "x0.npy")
    real_open, closed = os.open, []
    first = real_open(path, os.O_RDONLY)

    def racing(name, flags):   # the other thread stores its descriptor meanwhile
        filearray._fds.setdefault(name, first)
        return real_open(name, flags)

    real_close = os.close
    monkeypatch.setattr(filearray.os, "open", racing)
    monkeypatch.setattr(filearray.os, "close", lambda fd: closed.append(fd) or real_close(fd))
    filearray._forget(path)
    try:
        assert filearray._descriptor(path) == first
        assert len(closed) == 1 and closed[0] != first
    finally:
        filearray._forget(path)

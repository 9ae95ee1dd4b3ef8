"""A memory-mapped `npy` source (mmap: true): the training rows read from the file a batch
at a time, with the in-memory run's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli, iris_config, write_config

ROWS = 6000  # the fold's 4,800 training rows are over STREAM_ROWS: streamed


def npy_files(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 12)).astype(np.float32) * 3 + 1
    y = (x[:, 0] + x[:, 1] ** 2 / 4 + rng.normal(size=ROWS) > 2).astype(np.int64)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return folder / "x.npy", folder / "y.npy"


def run_numbers(cli: Cli, tmp_path: Path, name: str, mmap: bool, shuffle: bool) -> tuple:
    x, y = npy_files(tmp_path)
    source = {"type": "npy", "path": str(x), "target_path": str(y)}
    if mmap:
        source["stream"] = True
    cfg = iris_config(tmp_path / name, data={"source": source},
                      validation={"validation_split": 0.2, "test_split": 0.0})
    cfg["model"]["layers"][-1] = {"type": "Dense", "units": 2, "activation": "softmax"}
    cfg["training"] = {"epochs": 2, "batch_size": 64, "shuffle": shuffle}
    result = cli("fit", write_config(tmp_path / f"{name}.yaml", cfg))
    assert result.exit_code == 0, result.output
    run = next((tmp_path / name).iterdir())
    return ((run / "history.csv").read_text(), json.loads((run / "metrics.json").read_text()),
            json.loads((run / "preprocessing.json").read_text())["features"])


def test_a_streamed_run_equals_the_in_memory_run(cli: Cli, tmp_path: Path) -> None:
    """Without shuffling the batches are the same rows in the same order: the history,
    the scores and the fitted statistics are equal."""
    assert run_numbers(cli, tmp_path, "mapped", True, False) == \
        run_numbers(cli, tmp_path, "memory", False, False)


def test_rows_are_read_as_training_goes(tmp_path: Path, monkeypatch) -> None:
    """The training input of a mapped source is a RowStream; each batch it gives is the
    preprocessing of those rows, as the in-memory arrays hold them. Each pass (epoch) is
    in the order Keras's PyDataset gave earlier releases: NumPy permutations from the seed,
    the first epoch on the second drawn (Keras ended an epoch before the first), a resumed
    run (`skip_epochs`) on those of the epochs it continues."""
    from kerastrain.config import load_config
    from kerastrain.data import streamed
    from kerastrain.data.streamed import RowStream
    from kerastrain.experiment import load_experiment

    x, y = npy_files(tmp_path)
    cfg = iris_config(tmp_path / "runs", data={"source": {
        "type": "npy", "path": str(x), "target_path": str(y), "stream": True}},
        validation={"validation_split": 0.2})
    experiment = load_experiment(load_config(write_config(tmp_path / "c.yaml", cfg)))
    rows = experiment.plan.folds[0].fit_rows
    pre = experiment.preprocessor(rows)
    stream, labels = experiment.arrays(pre, rows, "training rows")
    assert isinstance(stream, RowStream)
    whole = pre.transform_x(experiment.table, rows)
    rng = np.random.default_rng(1)
    orders = [rng.permutation(len(rows)) for _ in range(4)]
    monkeypatch.setattr(streamed, "CHUNK_BATCHES", 3)  # the last chunk and batch are short
    data = stream.keras_data(labels, 50, shuffle_seed=1)
    resumed = stream.keras_data(labels, 50, shuffle_seed=1, skip_epochs=1)
    for batches, order in ((data, orders[1]), (data, orders[2]), (resumed, orders[2])):
        got = list(batches.as_numpy_iterator())
        assert len(got) == len(batches) == -(-len(rows) // 50)
        assert [len(b) for b, _ in got] == [len(c) for c in np.array_split(
            order, range(50, len(rows), 50))]
        np.testing.assert_array_equal(np.concatenate([b for b, _ in got]), whole[order])
        np.testing.assert_array_equal(np.concatenate([t for _, t in got]), labels[order])
    # a chunk holds at most CHUNK_BYTES of model input (here two batches' worth)
    sizes: list[int] = []
    chunks = streamed.Epochs.chunks
    monkeypatch.setattr(streamed, "CHUNK_BYTES", 100 * whole[:1].nbytes)
    monkeypatch.setattr(streamed.Epochs, "chunks", lambda self: (
        sizes.append(len(c[0])) or c for c in chunks(self)))
    got = list(stream.keras_data(labels, 50, shuffle_seed=1).as_numpy_iterator())
    assert sizes[0] == 100 and sum(sizes) == len(rows) == sum(len(b) for b, _ in got)
    monkeypatch.setattr(streamed.Epochs, "chunks", chunks)
    # Keras's fit reads each epoch's pass once, to the end: epoch k is on draw k + 2
    from kerastrain import _keras

    passes = []
    next_order = streamed.Epochs.next_order
    monkeypatch.setattr(streamed.Epochs, "next_order", lambda self: passes.append(
        next_order(self).copy()) or passes[-1])
    keras = _keras.keras()
    model = keras.Sequential([keras.Input((whole.shape[1],)), keras.layers.Dense(2)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=4)
    model.fit(stream.keras_data(labels, 50, shuffle_seed=1), epochs=3, verbose=0,
              validation_data=stream.keras_data(labels, 50))
    shuffled = [order for order in passes if not np.array_equal(order, np.arange(len(rows)))]
    assert len(shuffled) == 3 and len(passes) == 6
    for got, order in zip(shuffled, orders[1:], strict=True):
        np.testing.assert_array_equal(got, order)


SCHEMES = {"holdout": {"validation_split": 0.25},
           "kfold": {"scheme": "kfold", "n_splits": 3, "refit": False},
           "repeated_kfold": {"scheme": "repeated_kfold", "n_splits": 2, "n_repeats": 2,
                              "refit": False}}


def places(run: Path) -> dict[str, Path]:
    """Each fold's folder by name, or the run's own for a hold-out."""
    if not (run / "folds").is_dir():
        return {"holdout": run}
    return {p.name: p for p in sorted((run / "folds").iterdir())}


def fold_files(run: Path) -> dict[str, tuple]:
    """Each fold's (or the run's) history, scores and fitted features."""
    return {name: ((p / "history.csv").read_text(), (p / "metrics.json").read_text(),
                   json.loads((p / "preprocessing.json").read_text())["features"])
            for name, p in places(run).items()}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_scheme_streams_with_the_in_memory_numbers(cli: Cli, tmp_path: Path, monkeypatch,
                                                         scheme: str) -> None:
    """Hold-out, K-fold and repeated K-fold on an NPZ left in its file (every fold's rows
    streamed: the threshold lowered to 50 rows), the wide column never read whole: each
    fold's history, scores and fitted statistics equal the in-memory run's, and the
    statistics are those of the fold's own training rows."""
    from kerastrain.data.filearray import FileArray
    from kerastrain.data.splits import SplitPlan

    monkeypatch.setattr("kerastrain.experiment.STREAM_ROWS", 50)
    real = FileArray.__array__
    monkeypatch.setattr(FileArray, "__array__", lambda self, *a, **k: pytest.fail(
        "a wide column read whole") if self.ndim > 1 else real(self, *a, **k))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 8)).astype(np.float32) * 2 + 5
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] + x[:, 1] > 10).astype(np.int64))
    runs = {}
    for name, stream in (("memory", False), ("streamed", True)):
        source = {"type": "npz", "path": str(tmp_path / "d.npz"), **({"stream": True} if stream
                                                                    else {})}
        cfg = iris_config(tmp_path / name, data={"source": source, "target": "y"},
                          validation={**SCHEMES[scheme], "test_split": 0.0})
        cfg["model"]["layers"][-1] = {"type": "Dense", "units": 2, "activation": "softmax"}
        cfg["training"] = {"epochs": 1, "batch_size": 32, "shuffle": False}
        cfg["runtime"] = {"workers": 1}
        result = cli("fit", write_config(tmp_path / f"{name}.yaml", cfg), "--quiet")
        assert result.exit_code == 0, result.output
        runs[name] = next((tmp_path / name).iterdir())
    assert fold_files(runs["streamed"]) == fold_files(runs["memory"])
    plan = SplitPlan.from_json(json.loads((runs["streamed"] / "splits.json").read_text()))
    folds = places(runs["streamed"])
    assert list(folds) == [f.name for f in plan.folds]
    assert len(folds) == {"holdout": 1, "kfold": 3, "repeated_kfold": 4}[scheme]
    for fold in plan.folds:
        [entry] = json.loads((folds[fold.name] / "preprocessing.json").read_text())["features"]
        train = x[fold.fit_rows].astype(np.float64)
        assert entry["mean"] == pytest.approx(train.mean(), abs=1e-12)
        assert entry["std"] == pytest.approx(train.std(), abs=1e-12)


def test_a_streamed_csv_run_equals_the_in_memory_run(cli: Cli, tmp_path: Path,
                                                     monkeypatch) -> None:
    """A CSV's numeric columns from the column cache, its text labels in memory; the run
    is evaluated again from the file."""
    monkeypatch.setenv("KERASTRAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("kerastrain.experiment.STREAM_ROWS", 50)
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=300), rng.normal(size=300)
    lines = ["a,b,label"] + [f"{u:.6f},{v:.6f},{'yes' if u + v > 0 else 'no'}"
                             for u, v in zip(a, b, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    numbers = []
    for name, stream in (("memory", False), ("streamed", True)):
        source = {"type": "csv", "path": str(tmp_path / "d.csv"), **({"stream": True} if stream
                                                                    else {})}
        cfg = iris_config(tmp_path / name, data={"source": source, "target": "label"},
                          validation={"validation_split": 0.25, "test_split": 0.2})
        cfg["model"]["layers"][-1] = {"type": "Dense", "units": 2, "activation": "softmax"}
        cfg["training"] = {"epochs": 2, "batch_size": 32, "shuffle": False}
        result = cli("fit", write_config(tmp_path / f"{name}.yaml", cfg), "--quiet")
        assert result.exit_code == 0, result.output
        numbers.append(fold_files(next((tmp_path / name).iterdir())))
    assert numbers[0] == numbers[1]
    assert any((tmp_path / "cache").iterdir())
    scored = cli("evaluate", next((tmp_path / "streamed").iterdir()), "--json")
    assert scored.exit_code == 0, scored.output  # the fingerprint of the streamed columns holds


def test_a_bad_shard_is_exit_2_naming_the_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    x = np.zeros((10, 3), np.float32)
    np.savez(tmp_path / "parts" / "a.npz", x=x, y=np.arange(10) % 2)
    np.savez(tmp_path / "parts" / "b.npz", x=x, y=np.arange(10) % 2)
    data = (tmp_path / "parts" / "b.npz").read_bytes()
    (tmp_path / "parts" / "b.npz").write_bytes(data[:len(data) // 2])
    cfg = iris_config(tmp_path / "runs", data={"source": {
        "type": "npz", "path": str(tmp_path / "parts"), "stream": True}, "target": "y"})
    result = cli("fit", write_config(tmp_path / "c.yaml", cfg))
    assert result.exit_code == 2, result.output
    assert "b.npz" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

"""A memory-mapped `npy` source (mmap: true): the training rows read from the file a batch
at a time, with the in-memory run's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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


def test_rows_are_read_as_training_goes(tmp_path: Path) -> None:
    """The training input of a mapped source is a RowStream; each batch it gives is the
    preprocessing of those rows, as the in-memory arrays hold them."""
    from kerastrain.config import load_config
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
    batches = stream.keras_data(labels, 500, shuffle_seed=1)
    first, _ = batches[0]
    np.testing.assert_array_equal(first, whole[batches.order[:500]])
    seen = np.sort(np.concatenate([batches.order[i * 500:(i + 1) * 500]
                                   for i in range(len(batches))]))
    np.testing.assert_array_equal(seen, np.arange(len(rows)))

"""Training throughput: kerastrain's fit path against hand-written Keras, same model, data.

The seed's MLP (784-300-300-10, SGD, sparse categorical crossentropy) on generated
784-feature rows. Three ways, each timed as the whole `fit` call (tracing included) and
reported as samples per second over `--epochs` epochs:

  keras-default   model.fit(numpy, batch_size=32), steps_per_execution=1 (the seeds' way)
  keras-spe32     the same with steps_per_execution=32
  kerastrain      kerastrain's train_fold with its defaults (preprocessing, callbacks,
                  checkpoint of the best model included)

Run by hand:  python benchmarks/throughput.py [--rows 20000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def hand_written(x: np.ndarray, y: np.ndarray, epochs: int, spe: int) -> float:
    from kerastrain import _keras

    keras = _keras.keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)),
                              keras.layers.Dense(300, activation="relu"),
                              keras.layers.Dense(300, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=spe)
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def with_kerastrain(rows: int, epochs: int, folder: Path) -> tuple[float, int]:
    from kerastrain.config import load_config
    from kerastrain.rundir import RunDir
    from kerastrain.training.check import check
    from kerastrain.training.fold import train_fold
    from kerastrain.training.progress import Progress

    config = {
        "name": "bench", "seed": 0,
        "data": {"source": {"type": "synthetic", "name": "classification", "n_samples":
                            int(rows / 0.9) + 1, "n_features": 784, "n_classes": 10}},
        "model": {"layers": [{"type": "Dense", "units": 300, "activation": "relu"},
                             {"type": "Dense", "units": 300, "activation": "relu"},
                             {"type": "Dense", "units": 10, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.01},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "training": {"epochs": epochs, "batch_size": 32},
        "validation": {"validation_split": 0.1},
        "output": {"runs_dir": str(folder)},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    checked = check(load_config(path))
    fold = checked.experiment.plan.folds[0]
    start = time.perf_counter()
    train_fold(checked, fold, RunDir(folder), "bench", Progress())
    return time.perf_counter() - start, len(fold.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=args.rows)
    results = {}
    for name, spe in (("keras-default", 1), ("keras-spe32", 32)):
        seconds = hand_written(x, y, args.epochs, spe)
        results[name] = args.rows * args.epochs / seconds
    with tempfile.TemporaryDirectory() as tmp:
        seconds, n_train = with_kerastrain(args.rows, args.epochs, Path(tmp))
    results["kerastrain"] = n_train * args.epochs / seconds
    base = results["keras-default"]
    for name, rate in results.items():
        print(f"{name:<14} {rate:>9,.0f} samples/s   {rate / base:4.2f}x")


if __name__ == "__main__":
    main()

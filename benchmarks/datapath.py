"""The data path in isolation: the leakage row ids, the data fingerprint, fitting the
preprocessing and building the model's input, timed on fm.npz (60k x 784 float32).

Each step is run `--repeat` times; the best wall time is printed with the peak of the
memory it allocated (tracemalloc: NumPy's buffers included). Compare two versions by
running it with each on PYTHONPATH:

    python benchmarks/datapath.py --data fm.npz        # fm.npz from peers/make_data.py
    python benchmarks/datapath.py                       # generates it in a temporary folder
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def timed(label: str, step: Callable[[], Any], repeat: int) -> Any:
    """Best wall time of `repeat` runs of `step`, and the largest allocation peak."""
    best, peak, result = float("inf"), 0, None
    for _ in range(repeat):
        tracemalloc.start()
        start = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    print(f"{label:<44} {best:7.3f} s  {peak / 2**20:8.1f} MiB allocated at peak")
    return result


def _image_like(n: int) -> Any:
    """Rows like digitized images: blank leading pixels (where a sort of whole rows compares
    long runs of equal bytes), sparse strokes, a duplicate every 50 rows."""
    from kerastrain.data.table import Table

    rng = np.random.default_rng(0)
    x = np.zeros((n, 784), np.float32)
    x[:, 200:] = (rng.random((n, 584)) < 0.3) * rng.integers(1, 256, (n, 584)) / 255
    x[::50] = x[1::50]
    return Table({"x": x})


def run(path: Path, repeat: int) -> None:
    from kerastrain.config.schema import PreprocessingSpec
    from kerastrain.data.leakage import row_ids
    from kerastrain.data.preprocess import Preprocessor
    from kerastrain.data.table import Table, fingerprint_columns, read_npz

    table = read_npz(path)
    n = table.n_rows
    ordered = np.arange(int(n * 0.9))                                  # holdout, no shuffle
    shuffled = np.random.default_rng(1).permutation(n)[:int(n * 0.9)]  # a fold's rows
    timed("row_ids (leakage check)", lambda: row_ids(table, ["x"]), repeat)
    images = _image_like(n)
    timed("row_ids, image-like float32 rows", lambda: row_ids(images, ["x"]), repeat)
    pixels = Table({"x": (images.columns["x"] * 255).astype(np.uint8)})
    timed("row_ids, image-like uint8 rows", lambda: row_ids(pixels, ["x"]), repeat)
    timed("fingerprint_columns(x, y)", lambda: fingerprint_columns(table, ["x", "y"]), repeat)
    for numeric in ("none", "standardize"):
        spec = PreprocessingSpec(numeric=numeric)
        for name, rows in (("ordered", ordered), ("shuffled", shuffled)):
            pre = timed(f"Preprocessor.fit, {numeric}, {name} rows", lambda rows=rows, spec=spec:
                        Preprocessor.fit(table, ["x"], "y", rows, spec, "classification",
                                         "integer"), repeat)
            timed(f"transform_x, {numeric}, {name} rows",
                  lambda pre=pre, rows=rows: pre.transform_x(table, rows), repeat)
    timed("transform_y, shuffled rows", lambda: pre.transform_y(table, shuffled), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="fm.npz (default: generate one with peers/make_data.py)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.data is not None:
        run(args.data, args.repeat)
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, str(HERE / "peers" / "make_data.py"), folder],
                       check=True, stdout=subprocess.DEVNULL)
        run(Path(folder) / "fm.npz", args.repeat)


if __name__ == "__main__":
    main()

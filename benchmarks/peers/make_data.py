# ruff: noqa  (a verbatim copy of a peer script: its own style, kept as written)
# Copied from ../shared/bench/ (the peer scripts filed with kerastrain issue 9).
"""Writes the data the performance comparisons share: fm.npz (60k x 784, Fashion-MNIST's
shape, 10 Gaussian classes) and digits10.csv (scikit-learn digits tiled 10x, 17,970 rows)."""
import sys
from pathlib import Path
import numpy as np
from sklearn.datasets import load_digits

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
rng = np.random.default_rng(0)
centers = rng.normal(size=(10, 784)).astype("float32")
y = rng.integers(0, 10, size=60000)
x = (centers[y] + rng.normal(scale=3.0, size=(60000, 784))).astype("float32")
np.savez(out / "fm.npz", x=x, y=y)
X, t = load_digits(return_X_y=True)
X = np.tile(X, (10, 1)); t = np.tile(t, 10)
cols = [f"p{i}" for i in range(64)]
with open(out / "digits10.csv", "w") as f:
    f.write(",".join(cols + ["target"]) + "\n")
    for row, label in zip(X.astype(int), t):
        f.write(",".join(map(str, row)) + f",{label}\n")
print("wrote", out / "fm.npz", out / "digits10.csv")

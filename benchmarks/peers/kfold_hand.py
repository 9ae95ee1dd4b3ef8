# ruff: noqa  (a verbatim copy of a peer script: its own style, kept as written)
# Copied from ../shared/bench/ (the peer scripts filed with kerastrain issue 9);
# the only change is the DTYPE_POLICY hook for `compare.py --gpu`.
"""Hand-written 5-fold (Deep Learning with Python ch. 4), as a whole process: digits10.csv,
64-300-300-10 MLP, standardize per fold, validate on the scored fold, keep each fold model."""
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, keras
if os.environ.get("DTYPE_POLICY"):  # added: benchmarks/compare.py --gpu
    keras.mixed_precision.set_global_policy(os.environ["DTYPE_POLICY"])
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype="float32")
X, y = data[:, :-1], data[:, -1].astype(int)
epochs = int(os.environ.get("EPOCHS", "5"))
out = os.environ.get("OUT", "/tmp/kfold_hand"); os.makedirs(out, exist_ok=True)
scores = []
folds = [(np.arange(len(X)), None)] if os.environ.get("HOLDOUT") else \
    StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)
for i, (tr, va) in enumerate(folds):
    if va is None:
        rng = np.random.default_rng(0); p = rng.permutation(len(X)); va, tr = p[:len(X)//5], p[len(X)//5:]
    keras.backend.clear_session()
    sc = StandardScaler().fit(X[tr])
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(300, activation="relu"),
                          keras.layers.Dense(300, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"],
              steps_per_execution=int(os.environ.get("SPE", "32")))
    h = m.fit(sc.transform(X[tr]), y[tr], validation_data=(sc.transform(X[va]), y[va]),
              epochs=epochs, batch_size=32, verbose=0)
    m.save(f"{out}/fold{i}.keras")
    scores.append(h.history["val_accuracy"][-1])
print(f"folds={len(scores)} mean_val_acc={np.mean(scores):.4f} std={np.std(scores, ddof=1) if len(scores) > 1 else 0:.4f}")

# ruff: noqa  (a verbatim copy of a peer script: its own style, kept as written)
# Copied from ../shared/bench/ (the peer scripts filed with kerastrain issue 9);
# the only change is the DTYPE_POLICY hook for `compare.py --gpu`.
"""The seeds' way (Hands-On ML ch. 10), as a whole process: load arrays, build the
784-300-300-10 MLP, compile with SGD, fit with validation_split=0.1, save the model."""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import keras
if os.environ.get("DTYPE_POLICY"):  # added: benchmarks/compare.py --gpu
    keras.mixed_precision.set_global_policy(os.environ["DTYPE_POLICY"])

d = np.load(sys.argv[1])
x, y = d["x"], d["y"]
epochs = int(os.environ.get("EPOCHS", "3"))
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(300, activation="relu"),
                          keras.layers.Dense(300, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(0.01),
              metrics=["accuracy"], steps_per_execution=int(os.environ.get("SPE", "1")))
h = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.1, verbose=0)
model.save(os.environ.get("OUT", "/tmp/seed_mlp.keras"))
print(f"val_accuracy={h.history['val_accuracy'][-1]:.4f}")

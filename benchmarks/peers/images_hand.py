"""The hand-written Keras script the image benchmark compares kerastrain with
(benchmarks/images.py): `keras.utils.image_dataset_from_directory` on a folder of PNGs,
the same CNN, optimizer, batch size, validation split and epochs as images.yaml.

    python benchmarks/peers/images_hand.py DIR   (EPOCHS=5, SPE=1, OUT=model.keras)

SPE is `steps_per_execution`: 1 as a script is usually written (Keras's default), 32 as
a tuned one (kerastrain's default).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402

folder, epochs = sys.argv[1], int(os.environ.get("EPOCHS", "5"))
train, val = keras.utils.image_dataset_from_directory(
    folder, validation_split=0.2, subset="both", seed=0, image_size=(64, 64), batch_size=32,
    verbose=False)
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255),
    keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
              steps_per_execution=int(os.environ.get("SPE", "1")))
history = model.fit(train, validation_data=val, epochs=epochs, verbose=0)
model.save(os.environ.get("OUT", "/tmp/images_hand.keras"))
print(f"val_accuracy={history.history['val_accuracy'][-1]:.4f}")

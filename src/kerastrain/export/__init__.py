"""Exporting a run's model with its preprocessing inside (`formats.export`), and the
raw-input model `serve` runs (`load.load_raw_model`)."""


def register() -> None:
    """Define and register kerastrain's Keras layers, so that an exported `model.keras`
    loads with `keras.saving.load_model` (imports TensorFlow)."""
    from kerastrain.data import layers
    from kerastrain.export import graph

    layers.classes()
    graph.classes()

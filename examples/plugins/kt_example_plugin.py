"""An example kerastrain plugin: a custom layer, a custom loss and a custom metric,
registered by name so a config can use them (`plugins: [kt_example_plugin]`) and so the
saved `model.keras` loads again in `kerastrain evaluate` and `kerastrain predict`."""

from __future__ import annotations

import keras

from kerastrain.registry import register


@register("layers")
class Scale(keras.layers.Layer):
    """Multiplies its input by one trainable scalar, starting at `initial`."""

    def __init__(self, initial: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial = float(initial)

    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(),
                                      initializer=keras.initializers.Constant(self.initial))

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "initial": self.initial}


@register("losses")
class ScaledMSE(keras.losses.Loss):
    """Mean squared error times `factor` (a stand-in for any loss of one's own)."""

    def __init__(self, factor: float = 1.0, name: str = "scaled_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.factor = float(factor)

    def call(self, y_true, y_pred):
        y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), keras.ops.shape(y_pred))
        return self.factor * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@register("metrics")
def within_10_percent(y_true, y_pred):
    """1 where the prediction is within 10% of the target, else 0 (a function metric)."""
    y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), keras.ops.shape(y_pred))
    close = keras.ops.abs(y_true - y_pred) <= 0.1 * keras.ops.abs(y_true)
    return keras.ops.mean(keras.ops.cast(close, y_pred.dtype), axis=-1)

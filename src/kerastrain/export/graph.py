"""A run's model with its fitted preprocessing inside: raw columns in, named predictions out.

`raw_model(pre, model)` wraps the trained `model.keras` (which takes preprocessed arrays)
in a Keras model whose inputs are the raw columns, one each, and whose layers are the
run's fitted ones (`data/layers.py`, built from preprocessing.json exactly as `predict`
builds them). What `predict` does in Python before those layers, reading a cell, is done
here in the graph:

- numbers come in as float32, NaN where missing;
- strings (categories, text) as tf.string: stripped, and the run's missing markers
  ("", NA, ?, ...) read as missing (`RawStrings`);
- dates as tf.string, in every form `predict` reads (ISO 8601 with an offset to UTC,
  05/17/2024, 2024/05/17, 17.05.2024, 5 Mar 2024, March 5, 2024: `export/dates.py`),
  parsed into days since 1970-01-01 (`ParseDays`); anything else counts as missing, as in
  `predict`.

Outputs: a classifier gives `probabilities` (rows, classes) and `label` (the training
labels: int64 when every class is an integer, else strings); a regressor gives `value`.
A graph model's outputs are prefixed with their names (`<output>_label`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data import columns, layers
from kerastrain.data.graphdata import GraphPreprocessor
from kerastrain.data.preprocess import Preprocessor
from kerastrain.export import dates

_classes: dict[str, type] = {}


@dataclass(frozen=True)
class RawInput:
    """One raw column the exported model takes: its column name, the name of its input
    (a valid identifier), dtype (float32 or string), kind, and shape per row."""

    column: str
    key: str
    dtype: str
    kind: str
    shape: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "name": self.key, "dtype": self.dtype,
                "kind": self.kind, "shape": list(self.shape)}


def classes() -> dict[str, type]:
    """The export layer classes, defined and registered (`kerastrain>Name`) once."""
    if not _classes:
        _define(_keras.keras(), _keras.tf())
    return _classes


def _define(keras: Any, tf: Any) -> None:
    register = keras.saving.register_keras_serializable(package="kerastrain")

    @register
    class RawStrings(keras.layers.Layer):
        """Strings as `predict` reads them: stripped, '' where a missing marker."""

        def __init__(self, markers: list[str], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.markers = sorted(markers)

        def call(self, x: Any) -> Any:
            x = tf.strings.strip(tf.reshape(x, (-1,)))
            lower = tf.strings.lower(x)
            marked = tf.reduce_any(tf.equal(lower[:, None], tf.constant(self.markers + [""])),
                                   axis=1)
            return tf.where(marked, tf.constant(""), x)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "markers": self.markers}

    ParseDays = dates.parse_days_class(keras, tf, register)

    @register
    class ClassScores(keras.layers.Layer):
        """A classifier's output as one score per class (a sigmoid's p as 1 - p, p)."""

        def call(self, x: Any) -> Any:
            x = tf.reshape(tf.cast(x, tf.float32), (tf.shape(x)[0], -1))
            return tf.concat([1.0 - x, x], axis=1) if x.shape[-1] == 1 else x

    @register
    class ClassLabels(keras.layers.Layer):
        """Scores -> the label of the highest one, as the training labels."""

        def __init__(self, labels: list[Any], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.labels = list(labels)

        def call(self, scores: Any) -> Any:
            return tf.gather(tf.constant(self.labels), tf.argmax(scores, axis=1))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "labels": self.labels}

    _classes.update(RawStrings=RawStrings, ParseDays=ParseDays, ClassScores=ClassScores,
                    ClassLabels=ClassLabels)


def _key(name: str, taken: set[str]) -> str:
    key = re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_") or "column"
    key = key if re.match(r"[A-Za-z]", key) else "c_" + key
    base, n = key, 1
    while key in taken:
        n += 1
        key = f"{base}_{n}"
    taken.add(key)
    return key


def raw_inputs(pre: Preprocessor | GraphPreprocessor) -> list[RawInput]:
    """Every raw column the model reads, once, in the order the data gives them."""
    entries = pre.features
    found: dict[str, RawInput] = {}
    taken: set[str] = set()
    for entry in entries:
        name = entry["name"]
        if name in found:
            continue
        numeric = "scale" in entry and entry["kind"] != "array"
        dtype = "float32" if numeric or entry["kind"] == "array" else "string"
        shape = tuple(entry["shape"]) if entry["kind"] == "array" else ()
        found[name] = RawInput(name, _key(name, taken), dtype, entry["kind"], shape)
    return list(found.values())


def _feature(entry: dict[str, Any], raw: Any, pre: Preprocessor, prefix: str,
             exact: bool) -> Any:
    """One fitted feature of the input as (rows, width) float32; its layers' names start
    with `prefix` (a column may feed several inputs of a graph model)."""
    keras = _keras.keras()
    marks = sorted({m.strip().lower() for m in pre.missing_values})
    suffix = prefix + "".join(c if c.isalnum() else "_" for c in entry["name"])
    if "scale" in entry:   # numeric, numeric binary, array: one `NumericColumns` each
        layer = layers.numeric_layer([entry], pre.rescale, exact)
        x = raw if entry["kind"] == "array" else keras.layers.Reshape(
            (1,), name=f"one_{suffix}")(raw)
    else:
        x = classes()["RawStrings"](marks, name=f"raw_{suffix}")(raw)
        if entry["kind"] in ("date", "datetime"):
            x = classes()["ParseDays"](name=f"days_{suffix}")(x)
        layer = layers.feature_layer(entry)
    layer.name = f"col_{suffix}"
    width = columns.width(entry)
    return keras.layers.Reshape((width,), name=f"flat_{suffix}")(
        keras.ops.cast(layer(x), "float32"))


def _model_input(pre: Preprocessor, tensors: dict[str, Any], prefix: str = "",
                 exact: bool = True) -> Any:
    """The preprocessed array one model input takes, from the raw inputs."""
    keras = _keras.keras()
    pieces = [_feature(entry, tensors[entry["name"]], pre, prefix, exact)
              for entry in pre.features]
    x = pieces[0] if len(pieces) == 1 else keras.layers.Concatenate(
        name=f"{prefix}features")(pieces)
    if len(pre.features) == 1 and pre.features[0]["kind"] == "array" and \
            len(pre.input_shape) > 1:
        x = keras.layers.Reshape(tuple(pre.input_shape), name=f"{prefix}shaped")(x)
    return x


def _named_outputs(pre: Preprocessor, out: Any, prefix: str) -> dict[str, Any]:
    if pre.task != "classification":
        name = prefix[:-1] or "value"
        return {name: _keras.keras().layers.Activation("linear", dtype="float32",
                                                        name=name)(out)}
    scores = classes()["ClassScores"](name=f"{prefix}probabilities")(out)
    labels = label_values(pre.classes)
    return {f"{prefix}probabilities": scores,
            f"{prefix}label": classes()["ClassLabels"](labels, name=f"{prefix}label")(scores)}


def label_values(labels: list[Any]) -> list[Any]:
    """The labels as the graph gives them: integers stay integers, the rest strings."""
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in labels):
        return [int(c) for c in labels]
    return [str(c) for c in labels]


def raw_model(pre: Preprocessor | GraphPreprocessor, model: Any,
              exact: bool = True) -> tuple[Any, list[RawInput]]:
    """The trained `model` behind the fitted preprocessing of `pre`: a Keras model from one
    raw input per column (dict keyed by `RawInput.key`) to named outputs. Unless `exact`,
    numbers are scaled in float32, not float64 (TFLite has no float64 arithmetic)."""
    keras = _keras.keras()
    specs = raw_inputs(pre)
    inputs = {spec.column: keras.Input(shape=spec.shape, dtype=spec.dtype, name=spec.key)
              for spec in specs}
    if isinstance(pre, GraphPreprocessor):
        fed = {name: _model_input(p, inputs, f"{name}_", exact) for name, p in pre.inputs.items()}
        out = model(fed if len(fed) > 1 else next(iter(fed.values())))
        if isinstance(out, dict):
            values = [out[name] for name in pre.outputs]
        else:
            values = list(out) if isinstance(out, (list, tuple)) else [out]
        named: dict[str, Any] = {}
        for (name, out_pre), value in zip(pre.outputs.items(), values, strict=True):
            named.update(_named_outputs(out_pre, value, f"{name}_"))
    else:
        named = _named_outputs(pre, model(_model_input(pre, inputs, "", exact)), "")
    wrapped = keras.Model({spec.key: inputs[spec.column] for spec in specs}, named,
                          name="raw_" + model.name)
    return wrapped, specs

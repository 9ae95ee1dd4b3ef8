"""A run's model with its fitted preprocessing inside: raw columns in, named predictions out.

`raw_model(pre, model)` wraps the trained `model.keras` (which takes preprocessed arrays)
in a Keras model whose inputs are the raw columns, one each, and whose layers are the
run's fitted ones (`data/layers.py`, built from preprocessing.json exactly as `predict`
builds them). What `predict` does in Python before those layers, reading a cell, is done
here in the graph:

- numbers come in as float32, NaN where missing;
- strings (categories, text) as tf.string: stripped, and the run's missing markers
  ("", NA, ?, ...) read as missing (`RawStrings`);
- dates as tf.string, ISO (2024-05-17, 2024-05-17T08:30[:00]) or the numeric forms
  kerastrain reads (05/17/2024[ 08:30[:00]], 2024/05/17, 17.05.2024), parsed into days
  since 1970-01-01 (`ParseDays`); anything else counts as missing, as in `predict`
  (which also reads month names, 17 May 2024, and ISO months, 2024-05: not here).

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

_classes: dict[str, type] = {}
TIME = r"(?: (\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?"
DATE_FORMS = (   # what `predict` reads as dates, each rewritten as "Y-M-D h:m:s"
    (r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d*)?)?)?Z?)?$",
     r"\1-\2-\3 \4:\5:\6"),                                     # ISO 8601 (NumPy's)
    (r"^(\d{1,2})/(\d{1,2})/(\d{4})" + TIME + "$", r"\3-\1-\2 \4:\5:\6"),  # 05/17/2024
    (r"^(\d{4})/(\d{1,2})/(\d{1,2})$", r"\1-\2-\3 ::"),                   # 2024/05/17
    (r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$", r"\3-\2-\1 ::"))                 # 17.05.2024
NORMAL = r"^(\d+)-(\d+)-(\d+) (\d*):(\d*):(\d*)$"


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

    @register
    class ParseDays(keras.layers.Layer):
        """Date strings -> days since 1970-01-01 (float64; NaN where missing or no date)."""

        def __init__(self, **kwargs: Any) -> None:
            kwargs["dtype"] = "float64"
            super().__init__(**kwargs)

        def call(self, x: Any) -> Any:
            ok = tf.zeros_like(x, dtype=tf.bool)
            text = tf.fill(tf.shape(x), "1970-1-1 ::")
            for pattern, form in DATE_FORMS:
                match = tf.strings.regex_full_match(x, pattern) & ~ok
                text = tf.where(match, tf.strings.regex_replace(x, pattern, form), text)
                ok = ok | match

            def group(k: int) -> Any:   # "0" before an empty (absent) part: 0
                return tf.strings.to_number(tf.strings.regex_replace(
                    text, NORMAL, "0\\" + str(k)), tf.float64)

            year, month, day = group(1), group(2), group(3)
            hour, minute, second = group(4), group(5), group(6)
            start = _days(tf, year, month)
            length = _days(tf, year + tf.cast(month == 12, tf.float64),
                           tf.where(month == 12, tf.ones_like(month), month + 1)) - start
            valid = ok & (month >= 1) & (month <= 12) & (day >= 1) & (day <= length) & \
                (hour < 24) & (minute < 60) & (second < 60)
            days = start + day - 1.0 + (hour * 3600.0 + minute * 60.0 + second) / 86400.0
            return tf.where(valid, days, tf.constant(np.nan, tf.float64))

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


def _days(tf: Any, year: Any, month: Any) -> Any:
    """Days since 1970-01-01 of the first of `month` in `year` (Hinnant's days-from-civil)."""
    y = year - tf.cast(month <= 2, tf.float64)
    era = tf.floor(y / 400.0)
    yoe = y - era * 400.0
    mp = tf.where(month > 2, month - 3.0, month + 9.0)
    doy = tf.floor((153.0 * mp + 2.0) / 5.0)
    doe = yoe * 365.0 + tf.floor(yoe / 4.0) - tf.floor(yoe / 100.0) + doy
    return era * 146097.0 + doe - 719468.0


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

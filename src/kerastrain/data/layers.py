"""The fitted transforms as Keras layers: the one implementation of every feature
transform, applied to the training arrays (in large batches, once per fold), by
`evaluate` and `predict`, and inside an exported model alike.

Each feature entry of preprocessing.json (its fitted state) maps to one layer here:

- numeric, numeric binary, array: `NumericColumns` (impute, rescale, shift, divide in
  float64, cast to float32; missing-indicator columns; a TFLite export's in float32);
- categorical: `keras.layers.StringLookup` (one_hot or int, one OOV bucket for unseen and
  rare values), or `keras.layers.Hashing`; binary strings: `StringLookup` of the second
  value (1) against the rest (0);
- date, datetime: `DateParts` (the year standardized; month, day, weekday, day of year and
  hour, plain or cyclic);
- text: `keras.layers.TextVectorization` (multi_hot, count or tf_idf).

A regression target the network learns standardized is put back in its units by
`TargetScale`, the model's last layer. The classes are defined (and registered as
`kerastrain>Name`, so a saved model loads them) on first use: importing this module
imports no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from kerastrain import _keras
from kerastrain.data import chunked

_classes: dict[str, type] = {}
BATCH_CHUNKS = 16   # a layer call takes this many of `chunked`'s chunks: few eager calls,
                    # temporaries of a few MiB


def classes() -> dict[str, type]:
    """The kerastrain layer classes, defined and registered once."""
    if not _classes:
        _define(_keras.keras())
    return _classes


def _define(keras: Any) -> None:
    ops = keras.ops
    register = keras.saving.register_keras_serializable(package="kerastrain")

    @register
    class NumericColumns(keras.layers.Layer):
        """(rows, k) numbers -> float32: NaN replaced by `fill` (where one is given),
        times `rescale`, minus `shift`, divided by `divisor`, in float64 (`exact`; in
        float32 otherwise: what TFLite's built-in ops compute); then 0/1 columns for the
        `indicator` columns that were missing."""

        def __init__(self, shift: list[float], divisor: list[float], rescale: float = 1.0,
                     fill: list[float] | None = None, indicator: list[int] | None = None,
                     exact: bool = True, **kwargs: Any) -> None:
            kwargs["dtype"] = "float64" if exact else "float32"   # no autocast on the way
            super().__init__(**kwargs)
            self.shift, self.divisor, self.rescale = list(shift), list(divisor), rescale
            self.fill, self.indicator, self.exact = fill, list(indicator or []), exact

        def call(self, x: Any) -> Any:
            return _numeric(ops, x, *self.constants())

        def constants(self) -> tuple:
            """rescale, fill, shift, divisor (float64 tensors, float32 unless `exact`;
            fill None when there is none) and the indicator columns: `_numeric`'s
            arguments."""
            dtype = self.dtype

            def tensor(values: list[float]) -> Any:
                return ops.convert_to_tensor(values[0] if len(values) == 1 else values, dtype)
            fill = None if self.fill is None else ops.convert_to_tensor(self.fill, dtype)
            return (ops.convert_to_tensor(self.rescale, dtype), fill, tensor(self.shift),
                    tensor(self.divisor), tuple(self.indicator))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "shift": self.shift, "divisor": self.divisor,
                    "rescale": self.rescale, "fill": self.fill, "indicator": self.indicator,
                    "exact": self.exact}

    @register
    class DateParts(keras.layers.Layer):
        """Days since 1970-01-01 (NaN where missing) -> float32 columns: the year
        standardized, then month, day, weekday and day of year scaled to [0, 1] (or,
        `cyclic`, as sine and cosine), the hour for a datetime, and a 0/1 missing column
        when `indicator`. The calendar is computed in the graph (Hinnant's days-to-civil)."""

        def __init__(self, fill: float, year_mean: float, year_std: float,
                     cyclic: bool = False, time: bool = False, indicator: bool = False,
                     **kwargs: Any) -> None:
            kwargs["dtype"] = "float64"
            super().__init__(**kwargs)
            self.fill, self.year_mean, self.year_std = fill, year_mean, year_std
            self.cyclic, self.time, self.indicator = cyclic, time, indicator

        def call(self, days: Any) -> Any:
            days = ops.reshape(ops.cast(days, "float64"), (-1,))
            missing = ops.isnan(days)
            days = ops.where(missing, ops.convert_to_tensor(self.fill, "float64"), days)
            whole = ops.floor(days)
            year, month, day = _civil(ops, whole)
            start = _days_from_civil(ops, year)
            weekday = ops.mod(whole + 3.0, 7.0)            # Monday 0; 1970-01-01 a Thursday
            yearday = whole - start                          # 0 for 1 January
            parts = [(year - self.year_mean) / self.year_std, (day - 1.0) / 30.0]
            turns = [(month - 1.0) / 12.0, weekday / 7.0, yearday / 365.25]
            if self.time:
                turns.append(days - whole)
            if self.cyclic:
                for turn in turns:
                    parts += [ops.sin(2 * math.pi * turn), ops.cos(2 * math.pi * turn)]
            else:
                parts += [(month - 1.0) / 11.0, weekday / 6.0, yearday / 365.0] + turns[3:]
            if self.indicator:
                parts.append(ops.cast(missing, "float64"))
            return ops.cast(ops.stack(parts, axis=1), "float32")

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "fill": self.fill, "year_mean": self.year_mean,
                    "year_std": self.year_std, "cyclic": self.cyclic, "time": self.time,
                    "indicator": self.indicator}

    @register
    class TargetScale(keras.layers.Layer):
        """The network's standardized output back in the target's units: x * std + mean.
        The two numbers are (non-trainable) weights, so each fold's model carries its own
        and a saved model keeps them."""

        def __init__(self, mean: float = 0.0, std: float = 1.0, **kwargs: Any) -> None:
            kwargs["dtype"] = "float32"
            super().__init__(**kwargs)
            self._init = (float(mean), float(std))

        def build(self, input_shape: Any) -> None:
            mean, std = self._init
            self.mean = self.add_weight(shape=(), initializer=keras.initializers.Constant(mean),
                                        trainable=False, name="mean")
            self.std = self.add_weight(shape=(), initializer=keras.initializers.Constant(std),
                                       trainable=False, name="std")

        def call(self, x: Any) -> Any:
            return ops.cast(x, "float32") * self.std + self.mean

    _classes.update(NumericColumns=NumericColumns, DateParts=DateParts,
                    TargetScale=TargetScale)


def _numeric(ops: Any, x: Any, rescale: Any, fill: Any, shift: Any, divisor: Any,
             indicator: tuple[int, ...]) -> Any:
    """`NumericColumns`' arithmetic, in the fitted numbers' dtype (float64; float32 for
    TFLite): the one implementation, which `apply` also runs compiled (XLA) over large
    arrays, the fitted numbers as arguments."""
    x = ops.cast(x, rescale.dtype) * rescale
    missing = None
    if fill is not None:
        missing = ops.isnan(x)
        x = ops.where(missing, fill, x)
    out = ops.cast((x - shift) / divisor, "float32")
    if indicator and missing is not None:
        flags = ops.cast(ops.take(missing, list(indicator), axis=1), "float32")
        out = ops.concatenate([out, flags], axis=1)
    return out


_compiled: list[Any] = []
COMPILE_VALUES = 1 << 22   # inputs of this many values and more run compiled


def _compiled_numeric() -> Any:
    """`_numeric` compiled with XLA once per process: the elementwise steps fused into one
    pass over each batch (as fast as NumPy in place), the same float64 arithmetic (the
    tests compare bit for bit); traced again only for another batch shape or dtype."""
    if not _compiled:
        keras, tf = _keras.keras(), _keras.tf()
        _compiled.append(tf.function(
            lambda x, rescale, fill, shift, divisor, indicator: _numeric(
                keras.ops, x, rescale, fill, shift, divisor, indicator), jit_compile=True))
    return _compiled[0]


def _civil(ops: Any, z: Any) -> tuple[Any, Any, Any]:
    """Year, month (1-12), day (1-31) of whole days since 1970-01-01, in float64."""
    z = z + 719468.0
    era = ops.floor(z / 146097.0)
    doe = z - era * 146097.0
    yoe = ops.floor((doe - ops.floor(doe / 1460.0) + ops.floor(doe / 36524.0)
                     - ops.floor(doe / 146096.0)) / 365.0)
    doy = doe - (365.0 * yoe + ops.floor(yoe / 4.0) - ops.floor(yoe / 100.0))
    mp = ops.floor((5.0 * doy + 2.0) / 153.0)
    day = doy - ops.floor((153.0 * mp + 2.0) / 5.0) + 1.0
    month = ops.where(mp < 10.0, mp + 3.0, mp - 9.0)
    year = yoe + era * 400.0 + ops.cast(month <= 2.0, "float64")
    return year, month, day


def _days_from_civil(ops: Any, year: Any) -> Any:
    """Days since 1970-01-01 of 1 January of `year`."""
    y = year - 1.0
    era = ops.floor(y / 400.0)
    yoe = y - era * 400.0
    doe = yoe * 365.0 + ops.floor(yoe / 4.0) - ops.floor(yoe / 100.0) + 306.0
    return era * 146097.0 + doe - 719468.0


def feature_layer(entry: dict[str, Any]) -> Any:
    """The Keras layer that applies one fitted feature entry (not numeric ones: those
    share one `numeric_layer`)."""
    keras = _keras.keras()
    kind, encoding = entry["kind"], entry.get("encoding")
    if kind in ("date", "datetime"):
        return classes()["DateParts"](entry["fill"], entry["year_mean"], entry["year_std"],
                                      encoding == "cyclic", kind == "datetime",
                                      entry["indicator"], name=_name(entry))
    if kind == "text":   # sequence: token ids (0 padding, 1 out of vocabulary)
        return keras.layers.TextVectorization(
            output_mode="int" if encoding == "sequence" else encoding,
            output_sequence_length=entry.get("sequence_length"),
            ngrams=entry["ngrams"] if entry["ngrams"] > 1 else None,
            vocabulary=entry["vocabulary"] or [""],
            idf_weights=entry.get("idf_weights") or None, name=_name(entry))
    if encoding == "hash":
        return keras.layers.Hashing(entry["hash_bins"], output_mode="one_hot", name=_name(entry))
    if encoding == "binary":
        return keras.layers.StringLookup(vocabulary=entry["categories"][1:],
                                         num_oov_indices=1, output_mode="int", name=_name(entry))
    return keras.layers.StringLookup(
        vocabulary=entry["categories"], num_oov_indices=1, name=_name(entry),
        output_mode="one_hot" if encoding == "one_hot" else "int")


def numeric_layer(entries: list[dict[str, Any]], rescale: float | None,
                  exact: bool = True) -> Any:
    """One `NumericColumns` for these numeric entries, side by side (or one array's);
    computing in float32 unless `exact`."""
    shift, divisor = [], []
    for entry in entries:
        if entry["scale"] == "standardize":
            shift.append(entry["mean"])
            divisor.append(entry["std"])
        elif entry["scale"] == "minmax":
            shift.append(entry["min"])
            divisor.append(entry["max"] - entry["min"])
        else:
            shift.append(0.0)
            divisor.append(1.0)
    fills = [entry.get("fill") for entry in entries]
    fill = None if all(f is None for f in fills) else [np.nan if f is None else f
                                                       for f in fills]
    indicator = [i for i, entry in enumerate(entries) if entry.get("indicator")]
    return classes()["NumericColumns"](shift, divisor, rescale or 1.0, fill, indicator,
                                       exact, name="numeric")


def _name(entry: dict[str, Any]) -> str:
    return "col_" + "".join(c if c.isalnum() else "_" for c in entry["name"])


def target_scale(mean: float, std: float) -> Any:
    return classes()["TargetScale"](mean, std, name="target_scale")


def apply(layer: Any, values: np.ndarray, rows: np.ndarray | None, out: np.ndarray,
          decode: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """`layer` applied to `values[rows]` (all rows by default; `decode`d first) in large
    batches, each selected and written into `out` (float32, rows first) in turn: no copy
    of all the selected rows is made. A large numeric array runs `NumericColumns`'
    arithmetic compiled, every batch of one shape (the last one padded)."""
    n = len(values) if rows is None else len(rows)
    width = max(1, int(np.prod(values.shape[1:], dtype=np.int64)))
    step = max(1, chunked.CHUNK_ELEMENTS * BATCH_CHUNKS // width)
    compiled = hasattr(layer, "constants") and n * width >= COMPILE_VALUES
    if compiled:
        run, constants = _compiled_numeric(), layer.constants()
    for start in range(0, n, step):
        stop = min(n, start + step)
        batch = values[start:stop] if rows is None else values[rows[start:stop]]
        batch = batch if decode is None else decode(batch)
        if compiled:
            if stop - start < step:
                batch = np.concatenate([batch, np.zeros((step - (stop - start),
                                                         *batch.shape[1:]), batch.dtype)])
            result = np.asarray(run(batch, *constants))[:stop - start]
        else:
            result = np.asarray(layer(batch))
        out[start:stop] = result.reshape(stop - start, -1)

"""A SavedModel converted for other runtimes: TFLite (TensorFlow's converter) and ONNX
(tf2onnx, an optional extra). What cannot be converted is a `UserError` naming why."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kerastrain import _keras
from kerastrain.errors import UserError


def to_tflite(saved_model: Path, strings: list[str]) -> bytes:
    """The TFLite flatbuffer of the SavedModel, in TFLite's built-in ops only (what every
    TFLite runtime has); a `UserError` naming the ops that have none and the `strings`
    columns ("name (kind)") that need them."""
    tf = _keras.tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with _quiet():   # the converter prints its MLIR dump to descriptor 2
            return converter.convert()
    except Exception as exc:  # the converter's ConverterError, among others
        text = str(exc)
        found = re.findall(r"(?:TF Select|Flex) ops: ([^\n]+)", text)
        ops = ", ".join(dict.fromkeys(o.strip() for line in found for o in line.split(",")))
        dated = any(s.endswith(("(date)", "(datetime)")) for s in strings)
        why = (f"the columns {', '.join(strings)} are read with TensorFlow's string ops"
               + (" (dates computed in float64)" if dated else "")
               + ", which TFLite's built-in ops lack. " if strings else "")
        raise UserError("TFLite cannot convert this model: its built-in ops have no "
                        f"{ops or text.strip().splitlines()[0]}; {why}" + TFLITE_WHY) from None


TFLITE_WHY = ("A runtime built with TensorFlow's own (Select TF / Flex) ops would be needed; "
              "a model of numeric columns converts (scaled in float32). Export saved_model "
              "or keras instead (docs/export.md).")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Descriptor 2 sent to /dev/null while converting (unless KERASTRAIN_TF_LOGS=1)."""
    if os.environ.get("KERASTRAIN_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def check_onnx() -> None:
    """A `UserError` unless tf2onnx is installed (checked without importing it)."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise UserError("exporting ONNX needs tf2onnx: pip install 'kerastrain[onnx]'.")


def to_onnx(raw: Any) -> bytes:
    """The ONNX graph of the raw-input model's serving function, through tf2onnx."""
    tf = _keras.tf()
    with _quiet():
        import tf2onnx
    specs = [tf.TensorSpec((None, *s.shape), getattr(tf, s.dtype), name=s.key)
             for s in raw.inputs]
    keys = [s.key for s in raw.inputs]
    model = raw.model

    @tf.function(input_signature=specs)
    def serve(*columns: Any) -> dict[str, Any]:
        return model(dict(zip(keys, columns, strict=True)), training=False)

    try:
        with _quiet():
            proto, _ = tf2onnx.convert.from_function(serve, input_signature=specs, opset=17)
    except Exception as exc:  # tf2onnx raises many kinds
        raise UserError(f"tf2onnx cannot convert this model: {str(exc).splitlines()[0]}") \
            from None
    import onnx

    left = sorted({node.op_type for node in proto.graph.node
                   if node.domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type)})
    if left:
        raise UserError(f"tf2onnx cannot convert this model: ONNX has no {', '.join(left)} "
                        "(TensorFlow ops tf2onnx left as they were). " + ONNX_WHY)
    return proto.SerializeToString()


ONNX_WHY = ("String columns (categories, text, dates) are read with TensorFlow's string "
            "ops, which standard ONNX lacks; a model of numeric columns converts. Export "
            "saved_model or keras instead (docs/export.md).")

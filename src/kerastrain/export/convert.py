"""A SavedModel converted for other runtimes: TFLite (TensorFlow's converter) and ONNX
(tf2onnx, an optional extra). What cannot be converted is a `UserError` naming why."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kerastrain import _keras
from kerastrain.errors import UserError


def to_tflite(saved_model: Path) -> bytes:
    """The TFLite flatbuffer of the SavedModel: TFLite's built-in ops, and TensorFlow ops
    (the Flex delegate, which the full TensorFlow interpreter includes) where none fits."""
    tf = _keras.tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises its own ConverterError and others
        ops = sorted(set(re.findall(r"'(tf\.\w+)'|op: (\w+)", str(exc))))
        named = ", ".join(a or b for a, b in ops) or str(exc).splitlines()[0]
        raise UserError(f"TFLite cannot convert this model: {named}. The saved_model and "
                        "keras formats hold every op.") from None


def check_onnx() -> None:
    try:
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        raise UserError(f"exporting ONNX needs tf2onnx ({exc}): pip install "
                        "'kerastrain[onnx]'.") from None


def to_onnx(raw: Any, saved_model: Path) -> bytes:
    """The ONNX graph of the SavedModel's serving signature, through tf2onnx."""
    import tf2onnx

    tf = _keras.tf()
    loaded = tf.saved_model.load(str(saved_model))
    fn = loaded.signatures["serving_default"]
    specs = [tf.TensorSpec(t.shape, t.dtype, name=name)
             for name, t in fn.structured_input_signature[1].items()]
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=17)
    except Exception as exc:  # tf2onnx raises many kinds
        raise UserError(f"tf2onnx cannot convert this model: {str(exc).splitlines()[0]}") \
            from None
    return proto.SerializeToString()

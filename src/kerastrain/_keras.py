"""The one place TensorFlow and Keras are imported, lazily and without C++ log noise.

`import tensorflow` costs seconds and prints oneDNN/CUDA notices straight to file
descriptor 2; commands that need no model never call `keras()`, and those that do
get the import (and device discovery) with descriptor 2 silenced, unless the user
asks for TensorFlow's own logs with KERASTRAIN_TF_LOGS=1.

Later, while training, TensorFlow's C++ code logs notices at its ERROR level that are
no errors (under `runtime.dtype_policy: mixed_float16`, oneDNN's "supports DT_HALF only
on platforms with AVX-512" at the first half-precision op; under `runtime.deterministic`,
tf.data's "NodeDef mentions attribute use_unbounded_threadpool" when fit makes its
dataset). Descriptor 2 cannot be silenced then (progress and errors go there), so the
C++ log level is 3 (fatal only) unless the user set TF_CPP_MIN_LOG_LEVEL: a real failure
reaches the user as a Python exception either way.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

_modules: dict[str, ModuleType] = {}


@contextlib.contextmanager
def _silenced_stderr() -> Iterator[None]:
    if os.environ.get("KERASTRAIN_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load() -> None:
    if os.environ.get("KERASTRAIN_TF_LOGS") != "1":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _silenced_stderr():
        import keras
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        tf.config.list_physical_devices()  # device discovery logs, once, while silenced
    _modules["tf"] = tf
    _modules["keras"] = keras


def keras() -> ModuleType:
    """The `keras` module (Keras 3), imported on first use."""
    if "keras" not in _modules:
        _load()
    return _modules["keras"]


def tf() -> ModuleType:
    """The `tensorflow` module, imported on first use."""
    if "tf" not in _modules:
        _load()
    return _modules["tf"]

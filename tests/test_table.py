"""The data fingerprint: a function of names, dtypes, shapes and values only, computed
from the arrays' own buffers without copying them."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np

from kerastrain.data.table import Table, fingerprint_columns

X = np.random.default_rng(0).normal(size=(2000, 100)).astype(np.float32)


def test_fingerprint_depends_on_values_not_memory_layout() -> None:
    strided = np.asfortranarray(X)
    assert not strided.flags.c_contiguous
    base = fingerprint_columns(Table({"x": X}), ["x"])
    assert fingerprint_columns(Table({"x": strided}), ["x"]) == base
    assert re.fullmatch("[0-9a-f]{64}", base)  # a SHA-256, in hex
    changed = X.copy()
    changed[1999, 99] += 1
    assert fingerprint_columns(Table({"x": changed}), ["x"]) != base


def test_fingerprint_tells_dtype_shape_and_names_apart() -> None:
    base = fingerprint_columns(Table({"x": X}), ["x"])
    assert fingerprint_columns(Table({"x": X.view(np.int32)}), ["x"]) != base
    assert fingerprint_columns(Table({"x": X.reshape(2000, 10, 10)}), ["x"]) != base
    assert fingerprint_columns(Table({"z": X}), ["z"]) != base
    words = Table({"s": np.array(["a", "b"], dtype=object), "n": np.array([1.0, 2.0])})
    assert fingerprint_columns(words, ["s", "n"]) != fingerprint_columns(words, ["n", "s"])


def test_fingerprint_does_not_copy_a_contiguous_array() -> None:
    tracemalloc.start()
    fingerprint_columns(Table({"x": X}), ["x"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.05 * X.nbytes

"""Whether a loss or metric fits its target and the model's output, checked before any
training: Keras only finds out on the first batch (a shape error deep in a graph, or
mid-training when a label first falls outside the output). Names Keras resolves by
itself ('accuracy') and names it does not know (a plugin's) are left to Keras."""

from __future__ import annotations

from typing import Any

import numpy as np

from kerastrain.config.schema import CompileSpec, KerasObject
from kerastrain.errors import KeyProblem

_ALIASES = {"mse": "meansquarederror", "mae": "meanabsoluteerror",
            "mape": "meanabsolutepercentageerror", "msle": "meansquaredlogarithmicerror",
            "kld": "kldivergence", "kullbackleiblerdivergence": "kldivergence",
            "rmse": "rootmeansquarederror", "bce": "binarycrossentropy"}
# integer class labels, one output unit per class
SPARSE = {"sparsecategoricalcrossentropy", "sparsecategoricalaccuracy",
          "sparsetopkcategoricalaccuracy"}
# one-hot labels, one output unit per class
ONE_HOT = {"categoricalcrossentropy", "categoricalfocalcrossentropy", "categoricalhinge",
           "categoricalaccuracy", "topkcategoricalaccuracy"}
# each output value compared with the label value in the same place: 0/1 labels ...
BINARY = {"binarycrossentropy", "binaryfocalcrossentropy", "hinge", "squaredhinge",
          "binaryaccuracy", "auc", "precision", "recall", "f1score", "fbetascore",
          "truepositives", "truenegatives", "falsepositives", "falsenegatives",
          "precisionatrecall", "recallatprecision", "sensitivityatspecificity",
          "specificityatsensitivity", "binaryiou"}
# ... or quantities
ELEMENTWISE = {"meansquarederror", "meanabsoluteerror", "meanabsolutepercentageerror",
               "meansquaredlogarithmicerror", "huber", "logcosh", "poisson", "kldivergence",
               "rootmeansquarederror", "r2score", "cosinesimilarity"}


def canonical(spec: str | KerasObject) -> str:
    """'SparseCategoricalCrossentropy', 'sparse_categorical_crossentropy' -> one key."""
    name = (spec if isinstance(spec, str) else spec.type).lower().replace("_", "")
    return _ALIASES.get(name, name)


def _classes(n: int) -> str:
    return f"{n} classes" if n != 2 else "2 classes"


def fit_problem(spec: str | KerasObject, width: int, task: str, n_classes: int,
                encoding: str, role: str = "loss") -> str | None:
    """Why `spec` (the loss, or a metric: `role`) cannot score an output of `width` values
    per row against the target, or None."""
    name = spec if isinstance(spec, str) else spec.type
    key = canonical(spec)
    if task != "classification":
        if key in SPARSE or key in ONE_HOT:
            return (f"{name} scores class labels, but the target is a regression target "
                    "(continuous values): use a regression loss such as mse, mae or huber, "
                    "or set data.task: classification if the values are classes.")
        return None
    n = n_classes
    if key in SPARSE:
        if encoding == "one_hot":
            return (f"{name} takes integer class labels, but the target is one-hot "
                    "(data.target_encoding: one_hot): use categorical_crossentropy "
                    "(categorical_accuracy), or data.target_encoding: integer.")
        if width != n:
            instead = (" With 1 unit use binary_crossentropy (sigmoid)." if width == 1 and n == 2
                       else "")
            return (f"{name} needs one output unit per class: the target has {_classes(n)}, "
                    f"the model outputs {width} value(s) per row; a label would fall "
                    f"outside the output mid-training. Give the last layer {n} units "
                    f"(softmax).{instead}")
        return None
    if key in ONE_HOT:
        if encoding != "one_hot":
            return (f"{name} takes one-hot labels, but the target is integer-coded: use "
                    "sparse_categorical_crossentropy (sparse_categorical_accuracy), or "
                    "data.target_encoding: one_hot.")
        return None
    if key in BINARY or key in ELEMENTWISE:
        if encoding == "one_hot":
            return None if width == n else (
                f"{name} compares each output value with the one-hot label in its place: "
                f"the target has {_classes(n)}, the model outputs {width}.")
        if width == 1 and n == 2:
            return None
        if n == 2:
            return (f"{name} compares each output value with the label (one 0/1 value per "
                    f"row), but the model outputs {width} values per row: give the last layer "
                    "1 unit (sigmoid), or use sparse_categorical_crossentropy with 2 units.")
        instead = ("sparse_categorical_crossentropy with one unit per class (softmax)"
                   if role == "loss" else "accuracy or sparse_categorical_accuracy")
        return (f"{name} compares each output value with one 0/1 label per row, which fits "
                f"two classes; the target has {_classes(n)} coded as integers (a shape "
                f"mismatch with the {width}-unit output). Use {instead}; or set "
                "data.target_encoding: one_hot (with categorical_crossentropy), where "
                f"{name} compares each class's column.")
    return None


def _entries(compile_spec: CompileSpec, output: str | None) -> list[tuple[Any, tuple]]:
    """(spec, key path) of the loss and every metric that scores `output` (None: the one
    output of a layer stack)."""
    loss = compile_spec.loss
    found: list[tuple[Any, tuple]] = []
    if isinstance(loss, dict):
        if output in loss:
            found.append((loss[output], ("compile", "loss", output)))
    else:
        found.append((loss, ("compile", "loss")))
    for key in ("metrics", "weighted_metrics"):
        value = getattr(compile_spec, key)
        if isinstance(value, dict):
            found += [(m, ("compile", key, output, i)) for i, m in enumerate(value.get(output, []))]
        else:
            found += [(m, ("compile", key, i)) for i, m in enumerate(value)]
    return found


def check_compile_fit(compile_spec: CompileSpec, width: int, task: str, classes: list[Any],
                      encoding: str, output: str | None = None) -> None:
    """A `KeyProblem` at the loss or metric (compile.loss, compile.metrics.<i>) that cannot
    score this output against its target."""
    for spec, path in _entries(compile_spec, output):
        role = "loss" if path[1] == "loss" else "metric"
        problem = fit_problem(spec, width, task, len(classes), encoding, role)
        if problem:
            where = f"output {output!r}: " if output else ""
            raise KeyProblem(path, where + problem)


def continuous_problem(values: np.ndarray, loss: str | KerasObject,
                       metrics: list[str | KerasObject]) -> KeyProblem | None:
    """A target whose task was left to the loss and metrics, which say classification,
    but whose values look continuous (floats that are not whole numbers, or so many
    distinct ones that a class would have under 5 rows; integers are taken as classes):
    the problem is at the loss or metric that said so."""
    if values.dtype.kind != "f" or values.ndim != 1:
        return None
    finite = values[np.isfinite(values)].astype(np.float64)
    distinct = len(np.unique(finite))
    whole = bool(np.all(finite == np.round(finite)))
    if not finite.size or (whole and (distinct <= 20 or len(finite) >= 5 * distinct)):
        return None
    for spec, path in [(loss, ("compile", "loss")),
                       *[(m, ("compile", "metrics", i)) for i, m in enumerate(metrics)]]:
        key = canonical(spec)
        if key in SPARSE or key in ONE_HOT or key in BINARY or "crossentropy" in key:
            name = spec if isinstance(spec, str) else spec.type
            shown = ", ".join(f"{v:.4g}" for v in finite[:3])
            return KeyProblem(path, f"{name} scores class labels, but the target holds "
                              f"continuous values ({shown}, ...; {distinct} distinct in "
                              f"{len(finite)} rows), not classes: {name} does not fit a "
                              "continuous target. Use a regression loss such as mse, mae or "
                              "huber, or set data.task: classification if they are classes.")
    return None

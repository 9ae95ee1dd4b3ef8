"""Config -> compiled `keras.Model` (a layer stack): layers, optimizer, loss and metrics
through the registry, and what a loss says about its target.

Every failure names the config key it came from (a `KeyProblem`), so the user sees the
file and line of the layer or argument Keras rejected.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kerastrain import _keras
from kerastrain.config.schema import CompileSpec, KerasObject, ModelSpec
from kerastrain.data.targets import TargetHints
from kerastrain.errors import KeyProblem
from kerastrain.models.precision import loss_scaled, output_scope
from kerastrain.registry import create_object

SHAPE_ARGS = ("input_shape", "input_dim", "batch_input_shape")


def build_sequential(spec: ModelSpec, input_shape: list[int]) -> Any:
    """A `keras.Sequential` whose input shape comes from the data."""
    keras = _keras.keras()
    model = keras.Sequential(name=spec.name or "sequential")
    model.add(keras.Input(shape=tuple(input_shape), name="features"))
    for i, layer_spec in enumerate(spec.layers):
        path = ("model", "layers", i)
        args = layer_spec.args
        for key in SHAPE_ARGS:
            if key in args and not (key == "input_dim" and layer_spec.type == "Embedding"):
                raise KeyProblem(path + (key,), f"{key} is not needed: the input shape comes "
                                 f"from the data ({input_shape}). Remove it.")
        last = i == len(spec.layers) - 1
        with output_scope(args) if last else contextlib.nullcontext():
            layer = create_object("layers", layer_spec, path)
        try:
            model.add(layer)
        except Exception as exc:  # Keras raises many types for shape mismatches
            raise KeyProblem(path, f"{layer_spec.type} cannot take the output of the layer "
                                   f"before it: {exc}") from None
    return model


def _metric_list(specs: list[str | KerasObject], path: tuple) -> list[Any]:
    return [create_object("metrics", m, path + (i,)) for i, m in enumerate(specs)]


def _metrics(specs: list | dict, key: str, outputs: list[str]) -> Any:
    """Keras's dict form per output; a flat list applies to every output of a graph."""
    path = ("compile", key)
    if isinstance(specs, dict):
        return {name: _metric_list(ms, path + (name,)) for name, ms in specs.items()}
    if len(outputs) > 1 and specs:
        return {name: _metric_list(specs, path) for name in outputs}
    return _metric_list(specs, path)


def compile_model(model: Any, spec: CompileSpec) -> None:
    """`model.compile(...)` with the optimizer, loss and metrics resolved by the registry;
    per-output losses, metrics and loss weights in Keras's dict form, by output name."""
    optimizer = loss_scaled(model, create_object("optimizers", spec.optimizer,
                                                 ("compile", "optimizer")))
    if isinstance(spec.loss, dict):
        loss = {name: create_object("losses", s, ("compile", "loss", name))
                for name, s in spec.loss.items()}
    else:
        loss = create_object("losses", spec.loss, ("compile", "loss"))
    outputs = list(getattr(model, "output_names", None) or [])  # Sequential has none
    metrics = _metrics(spec.metrics, "metrics", outputs)
    weighted = _metrics(spec.weighted_metrics, "weighted_metrics", outputs)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                  weighted_metrics=weighted or None, loss_weights=spec.loss_weights,
                  steps_per_execution=spec.steps_per_execution,
                  jit_compile=spec.jit_compile, run_eagerly=spec.run_eagerly)


def output_width_problem(width: int, task: str, classes: list[Any], encoding: str) -> str | None:
    """Why an output of `width` values cannot fit its target, or None: one unit per class,
    or one for two classes, or one per regression target."""
    if task == "classification":
        n = len(classes)
        allowed = {n} if encoding == "one_hot" or n > 2 else {1, 2}
        if width not in allowed:
            shown = ", ".join(map(str, classes[:10])) + (", ..." if n > 10 else "")
            want = " or ".join(map(str, sorted(allowed)))
            return (f"the model outputs {width} values per row, but the target has {n} "
                    f"classes ({shown}): the last layer needs {want} units.")
    elif width != 1:
        return (f"the model outputs {width} values per row, but the regression target is one "
                "value: the last layer needs 1 unit.")
    return None


def check_output_width(model: Any, spec: ModelSpec, task: str, classes: list[Any],
                       encoding: str) -> None:
    """The last layer's width must fit the target."""
    problem = output_width_problem(model.output_shape[-1], task, classes, encoding)
    if problem:
        raise KeyProblem(("model", "layers", len(spec.layers) - 1), problem)


_ONE_HOT_LOSSES = {"categorical_crossentropy", "categoricalcrossentropy",
                   "categorical_focal_crossentropy", "categoricalfocalcrossentropy",
                   "categorical_hinge", "categoricalhinge"}
_CLASSIFICATION_WORDS = ("crossentropy", "hinge", "focal", "accuracy", "auc", "precision",
                         "recall", "f1", "fbeta", "bce")


def _lower_name(spec: str | KerasObject) -> str:
    return (spec if isinstance(spec, str) else spec.type).lower()


def target_hints(loss: str | KerasObject, metrics: list[str | KerasObject]) -> TargetHints:
    """What one output's loss and metrics say about its target: a classification loss or
    metric (when the labels themselves do not tell), and one-hot labels (categorical
    losses)."""
    words = [_lower_name(loss)] + [_lower_name(m) for m in metrics]
    return TargetHints(
        classification=any(w in name for name in words for w in _CLASSIFICATION_WORDS),
        one_hot=_lower_name(loss) in _ONE_HOT_LOSSES)

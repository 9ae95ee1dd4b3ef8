"""The model of a run, whatever its form: built from the `model` and `compile` specs on the
shapes of the fitted preprocessing, its outputs checked against their targets; and
scored the way Keras should score it."""

from __future__ import annotations

from typing import Any

from kerastrain.config.schema import CompileSpec, ModelSpec
from kerastrain.data.graphdata import GraphPreprocessor
from kerastrain.data.layers import target_scale
from kerastrain.data.preprocess import Preprocessor
from kerastrain.models.build import build_sequential, check_output_width, compile_model
from kerastrain.models.feed import scoring_input
from kerastrain.models.graph import build_graph, check_graph_outputs
from kerastrain.models.lossfit import check_compile_fit
from kerastrain.models.precision import policy_scope


def build_model(model: ModelSpec, compile_spec: CompileSpec,
                pre: Preprocessor | GraphPreprocessor, dtype_policy: str | None = None) -> Any:
    """The configured model, compiled, each output's width, loss and metrics checked
    against its target (`KeyProblem`s at the config key that is wrong). `dtype_policy`
    (`runtime.dtype_policy`) is the policy of its layers; the outputs stay float32 under a
    mixed one (`models/precision.py`)."""
    if isinstance(pre, GraphPreprocessor):
        with policy_scope(dtype_policy):
            built = build_graph(model, pre.input_shape)
            compile_model(built, compile_spec)
        check_graph_outputs(built, model, pre.outputs)
        for j, (name, out) in enumerate(pre.outputs.items()):
            check_compile_fit(compile_spec, built.outputs[j].shape[-1], out.task, out.classes,
                              _encoding(out), name)
        return built
    with policy_scope(dtype_policy):
        built = build_sequential(model, pre.input_shape)
        scale = (pre.target or {}).get("scale")
        if scale:  # the network learns the target standardized; the model outputs its units
            built.add(target_scale(scale["mean"], scale["std"]))
        compile_model(built, compile_spec)
    check_output_width(built, model, pre.task, pre.classes, _encoding(pre))
    check_compile_fit(compile_spec, built.output_shape[-1], pre.task, pre.classes,
                      _encoding(pre))
    return built


def _encoding(pre: Preprocessor) -> str:
    return pre.target.get("encoding", "") if pre.target else ""


def evaluate_model(model: Any, x: Any, y: Any, batch_size: int) -> dict[str, float]:
    """`model.evaluate` as a dict of floats.

    Keras (3.15, compiled) averages each per-output loss over batches without weighting
    them by their size, so with a short last batch `loss` (which is weighted right) no
    longer equals the weighted sum of the per-output losses. For several outputs, those
    are recomputed here from the full batches and the rest, weighted by their rows.
    """
    scores = {k: float(v) for k, v in model.evaluate(
        **scoring_input(x, y, batch_size), verbose=0, return_dict=True).items()}
    n = len(next(iter(y.values())) if isinstance(y, dict) else y)
    rest = n % batch_size
    if len(model.outputs) < 2 or rest == 0 or n < batch_size:
        return scores
    cut = n - rest

    def part(data: Any, rows: slice) -> Any:
        return {k: v[rows] for k, v in data.items()} if isinstance(data, dict) else data[rows]

    head = model.evaluate(part(x, slice(0, cut)), part(y, slice(0, cut)), batch_size=batch_size,
                          verbose=0, return_dict=True)
    tail = model.evaluate(part(x, slice(cut, n)), part(y, slice(cut, n)), batch_size=rest,
                          verbose=0, return_dict=True)
    for key in scores:
        if key.endswith("_loss") and key != "loss" and key in head and key in tail:
            scores[key] = (float(head[key]) * cut + float(tail[key]) * rest) / n
    return scores

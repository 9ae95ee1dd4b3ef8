"""One traced model per process, lent to every fold that trains the same model.

Keras traces a model's train and test functions in its first `fit`: about a second on a
CPU even for iris's small MLP, as long as the whole fold's training. Every fold (and the
refit) trains a fresh model of the same architecture and compile settings, so after the
first, a fold's fresh model only lends its state to the model that is already traced:
its variables (the initial weights, the seed generators' state) and its optimizer's
initial variables (built here: zero slots, step 0, the configured learning rate) are
copied in, and that model trains as the fresh one would, to the same numbers
(`tests/test_reuse.py`). A model whose Keras config, compile config or strategy differ,
or whose variables do not pair one to one, is trained as built.
"""

from __future__ import annotations

import json
from typing import Any

_traced: tuple[str, Any] | None = None
SMALL_PARAMS = 1_000_000


def _key(model: Any, strategy: Any) -> str | None:
    try:
        parts = [model.get_config(), model.get_compile_config(), id(strategy)]
        return json.dumps(parts, sort_keys=True, default=repr)
    except Exception:  # a model Keras cannot describe: never lent
        return None


def _same_shapes(ours: list[Any], theirs: list[Any]) -> bool:
    return len(ours) == len(theirs) and all(
        tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
        for a, b in zip(ours, theirs, strict=True))


def _take_state(traced: Any, fresh: Any) -> bool:
    optimizer = fresh.optimizer
    if optimizer is None or traced.optimizer is None or not traced.optimizer.built:
        return False
    if not optimizer.built:
        optimizer.build(fresh.trainable_variables)
    pairs = [(traced.variables, fresh.variables),
             (traced.optimizer.variables, optimizer.variables)]
    if not all(_same_shapes(ours, theirs) for ours, theirs in pairs):
        return False
    for ours, theirs in pairs:
        for variable, value in zip(ours, theirs, strict=True):
            variable.assign(value)
    traced._initial_epoch = None  # Keras keeps a resumed fit's start on the model
    traced.stop_training = False
    traced.reset_metrics()
    return True


def lend(model: Any, strategy: Any) -> Any:
    """The model to train in place of the fresh `model`: the process's traced model of
    the same kind, given `model`'s state, or `model` itself (then kept as the traced one)."""
    global _traced
    key = _key(model, strategy)
    if key is None:
        return model
    if _traced is not None and _traced[0] == key and _traced[1] is not model \
            and _take_state(_traced[1], model):
        return _traced[1]
    _traced = (key, model)
    return model


def holds_small() -> bool:
    """Whether a traced model of at most `SMALL_PARAMS` parameters is kept: the garbage a
    fold leaves is then one small fresh model, not worth a full garbage collection
    (a quarter of a second) before the next."""
    return _traced is not None and _traced[1].count_params() <= SMALL_PARAMS


def forget() -> None:
    """Drop the traced model (its memory goes with the next garbage collection)."""
    global _traced
    _traced = None

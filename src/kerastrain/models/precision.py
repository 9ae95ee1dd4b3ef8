"""`runtime.dtype_policy` applied to the model the tool builds, not left to Keras's global
setting (which `keras.backend.clear_session()`, called before every fold's model, resets
to float32).

Every layer and the model itself are made under the policy, so under `mixed_float16` the
layers compute in float16 with float32 variables and `compile` wraps the optimizer in
Keras's `LossScaleOptimizer`. The output layers (the last layer of a stack, a graph's
`outputs`) stay float32 under a mixed policy, as Keras's mixed-precision guide asks: a
float16 softmax or loss loses precision and can overflow. A layer whose `args` give a
`dtype` keeps it. The saved model.keras records each layer's policy, so `evaluate`,
`predict` and `resume` load it as trained.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kerastrain import _keras

OUTPUT_DTYPE = "float32"


def check_policy(name: str) -> None:
    """A `ValueError` (Keras's message) for a name Keras does not know as a dtype policy."""
    _keras.keras().dtype_policies.get(name)


@contextlib.contextmanager
def policy_scope(name: str | None) -> Iterator[None]:
    """Layers and models made inside take the dtype policy `name` (None: leave Keras's
    global policy as it is); the global policy is restored on leaving."""
    if name is None:
        yield
        return
    config = _keras.keras().config
    before = config.dtype_policy()
    config.set_dtype_policy(name)
    try:
        yield
    finally:
        config.set_dtype_policy(before)


def output_scope(args: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
    """Where an output layer is made: float32 under a mixed policy, unless its `args` give
    a `dtype` of their own."""
    current = _keras.keras().config.dtype_policy()
    if "dtype" in args or not current.name.startswith("mixed_"):
        return contextlib.nullcontext()
    return policy_scope(OUTPUT_DTYPE)


def describe(model: Any) -> dict[str, Any]:
    """What run.json states: the policy of the model and its layers, and of its outputs."""
    policy = model.dtype_policy
    outputs = sorted({str(t.dtype) for t in model.outputs})
    return {"name": policy.name, "compute_dtype": policy.compute_dtype,
            "variable_dtype": policy.variable_dtype,
            "output_dtype": outputs[0] if len(outputs) == 1 else outputs}


def loss_scaled(model: Any, optimizer: Any) -> Any:
    """Under `mixed_float16`, the optimizer wrapped in Keras's `LossScaleOptimizer` here
    rather than by `compile`: the saved model's compile config then names the wrapper, so
    a loaded model (`resume`) gets the same optimizer, and its variables, back."""
    keras = _keras.keras()
    if model.dtype_policy.name != "mixed_float16" or isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)

"""Keras names -> Keras objects, the way `keras.optimizers.get` does it, with better misses.

Every public class of `keras.layers`, `keras.optimizers`, `keras.losses`, `keras.metrics`,
`keras.callbacks`, `keras.initializers`, `keras.regularizers`, `keras.constraints`, and
every function of `keras.activations` (plus the lower-case function names and aliases
Keras itself accepts, such as 'mse' or 'sparse_categorical_crossentropy') is known.
Nothing here imports TensorFlow until a name is looked up.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kerastrain import _keras
from kerastrain.errors import did_you_mean

KINDS: dict[str, tuple[str, str | None]] = {
    # kind: (keras module, base class whose subclasses count; None = functions only)
    "layers": ("layers", "Layer"),
    "optimizers": ("optimizers", "Optimizer"),
    "losses": ("losses", "Loss"),
    "metrics": ("metrics", "Metric"),
    "callbacks": ("callbacks", "Callback"),
    "activations": ("activations", None),
    "initializers": ("initializers", "Initializer"),
    "regularizers": ("regularizers", "Regularizer"),
    "constraints": ("constraints", "Constraint"),
    "schedules": ("optimizers.schedules", "LearningRateSchedule"),
}
_NOT_NAMES = {"get", "serialize", "deserialize"}
# Strings `compile` resolves from the loss rather than from keras.metrics.
_METRIC_SHORTHANDS = ("accuracy", "acc", "crossentropy", "ce")
# Keyword arguments every layer takes through `Layer.__init__(**kwargs)`.
_LAYER_KWARGS = {"input_shape", "input_dim", "batch_input_shape", "batch_size", "name",
                 "dtype", "trainable", "autocast", "activity_regularizer"}
# Argument-name endings whose values are themselves Keras objects.
_NESTED_KINDS = {"_initializer": "initializers", "_regularizer": "regularizers",
                 "_constraint": "constraints", "activation": "activations",
                 "learning_rate": "schedules"}

_custom: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}


class UnknownName(LookupError):
    """A name that is not in a registry; `str()` is the message for the user."""


class BadArguments(ValueError):
    """Arguments a Keras class does not take; `str()` is the message for the user."""

    def __init__(self, message: str, argument: str | None = None):
        super().__init__(message)
        self.argument = argument


@dataclass(frozen=True)
class Entry:
    name: str          # the name as Keras spells it
    obj: Any           # a class or a function
    is_class: bool


def register(kind: str, name: str | None = None) -> Callable[[Any], Any]:
    """Decorator for plugins: make a custom layer, loss, metric... known by its name, and
    registered with Keras's serialization so a saved model loads again."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry {kind!r}; one of {', '.join(KINDS)}")

    def decorate(obj: Any) -> Any:
        keras = _keras.keras()
        obj = keras.saving.register_keras_serializable(package="kerastrain")(obj)
        _custom[kind][name or obj.__name__] = obj
        return obj

    return decorate


def entries(kind: str) -> dict[str, Entry]:
    """Every name of `kind` as Keras spells it (a few differ only in case: the metric
    shorthand 'accuracy' and the class 'Accuracy')."""
    keras = _keras.keras()
    module_name, base_name = KINDS[kind]
    module = keras
    for part in module_name.split("."):
        module = getattr(module, part)
    base = getattr(module, base_name) if base_name else None
    found: dict[str, Entry] = {}
    if kind == "metrics":
        found.update({short: Entry(short, None, False) for short in _METRIC_SHORTHANDS})
    for name, obj in vars(module).items():
        if name.startswith("_") or name in _NOT_NAMES:
            continue
        if inspect.isclass(obj):
            if base is not None and issubclass(obj, base) and obj is not base:
                found[name] = Entry(name, obj, True)
        elif callable(obj) and name.islower():
            found.setdefault(name, Entry(name, obj, False))
    for alias, obj in _aliases(kind).items():
        found.setdefault(alias, Entry(alias, obj, inspect.isclass(obj)))
    for name, obj in _custom[kind].items():
        found[name] = Entry(name, obj, inspect.isclass(obj))
    return found


def _aliases(kind: str) -> dict[str, Any]:
    """Keras's own short names ('mse', 'bce', 'l2'), where this Keras version lists them."""
    import importlib

    try:
        module = importlib.import_module(f"keras.src.{KINDS[kind][0]}")
    except ImportError:
        return {}
    return dict(getattr(module, "ALL_OBJECTS_DICT", {}))


def names(kind: str) -> list[str]:
    """Every name of `kind` as Keras spells it, sorted."""
    return sorted(entries(kind), key=str.lower)


def lookup(kind: str, name: str) -> Entry:
    """The entry for `name` (exact spelling first, then case-insensitive), or UnknownName
    with the closest names."""
    known = entries(kind)
    found = known.get(str(name))
    if found is None:
        by_lower = {k.lower(): e for k, e in sorted(known.items(), reverse=True)}
        found = by_lower.get(str(name).lower())
    if found is None:
        singular = {"losses": "loss", "activations": "activation"}.get(kind, kind.rstrip("s"))
        raise UnknownName(f"unknown {singular} {name!r}."
                          f"{did_you_mean(str(name), names(kind))}"
                          f"  (kerastrain list {kind} shows all of them)")
    return found


def accepted_arguments(cls: type) -> set[str] | None:
    """Constructor arguments `cls` takes; None when it takes any keyword."""
    accepted: set[str] = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        accepted |= {p for p, v in params.items()
                     if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
        if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
            return accepted
        if klass.__name__ == "Layer":
            return accepted | _LAYER_KWARGS
    return None


def check_arguments(entry: Entry, args: dict[str, Any]) -> None:
    """BadArguments naming the first argument `entry`'s class does not take."""
    if not entry.is_class:
        if args:
            raise BadArguments(f"{entry.name!r} is a function and takes no arguments; "
                               f"use its class form for arguments.", next(iter(args)))
        return
    accepted = accepted_arguments(entry.obj)
    if accepted is None:
        return
    for arg in args:
        if arg not in accepted:
            raise BadArguments(f"{entry.name} takes no argument {arg!r}."
                               f"{did_you_mean(arg, accepted)}  "
                               f"It takes: {', '.join(sorted(accepted))}.", arg)


def nested_kind(argument: str) -> str | None:
    """The registry an argument's value belongs to ('kernel_regularizer' -> 'regularizers')."""
    for ending, kind in _NESTED_KINDS.items():
        if argument.endswith(ending):
            return kind
    return None


def create(kind: str, name: str, args: dict[str, Any] | None = None) -> Any:
    """An instance of a Keras class, or Keras's own string for a function name.

    Argument values that are themselves Keras objects (`kernel_regularizer: {type: L2,
    l2: 0.01}`, `activation: relu`) are resolved and checked the same way.
    """
    args = dict(args or {})
    entry = lookup(kind, name)
    check_arguments(entry, args)
    for arg, value in list(args.items()):
        sub = nested_kind(arg)
        if sub is None or value is None:
            continue
        if isinstance(value, dict) and ("type" in value or "class_name" in value):
            inner = dict(value)
            inner_name = inner.pop("type", None) or inner.pop("class_name")
            try:
                args[arg] = create(sub, inner_name, inner.pop("config", None) or inner)
            except (UnknownName, BadArguments) as exc:
                raise BadArguments(str(exc), arg) from None
        elif isinstance(value, str):
            try:
                args[arg] = create(sub, value)
            except UnknownName as exc:
                raise BadArguments(str(exc), arg) from None
    custom = entry.name in _custom[kind]  # plugins' names, which Keras cannot resolve
    if kind in ("losses", "metrics") and not args and not custom:
        return entry.name  # compile resolves it, 'accuracy' from the loss
    if not entry.is_class:
        return entry.obj if kind == "activations" or custom else entry.name
    return entry.obj(**args)

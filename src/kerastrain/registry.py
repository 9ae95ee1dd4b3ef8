"""Keras names -> Keras objects, the way `keras.optimizers.get` does it, with better misses.

Every public class of `keras.layers`, `keras.optimizers`, `keras.losses`, `keras.metrics`,
`keras.callbacks`, `keras.initializers`, `keras.regularizers`, `keras.constraints` and
`keras.optimizers.schedules`, every function of `keras.activations`, and the short names
Keras's own public `get()` accepts ('mse', 'l1l2', 'accuracy') are known. Each kind's
table is built once per process; nothing here imports TensorFlow until a name is looked up.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kerastrain import _keras, kerasnames
from kerastrain.errors import KeyProblem, did_you_mean

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
# Short names that Keras's public `keras.<kind>.get(name)` resolves but that are no
# attribute of the module; kept where this Keras version resolves them.
_SHORT_NAMES = {
    "losses": ("mse", "mae", "mape", "msle", "kld", "bce", "MSE", "MAE", "MAPE", "MSLE",
               "KLD", "BCE"),
    "metrics": ("mse", "mae", "mape", "msle", "bce", "auc", "precision", "recall",
                "f1_score", "r2_score", "binary_io_u", "sum", "mean"),
    "regularizers": ("l1l2",),
    "initializers": ("normal", "uniform", "zero", "one"),
}
# Names Keras exports that a YAML config cannot use, left out of `names` (what `kerastrain
# list` shows): each needs a Python object for an argument (a function, a cell, a list of
# layers, another framework's module, a saved model) or a package kerastrain does not
# install (OrbaxCheckpoint), or Keras and kerastrain add it to every run themselves.
# Layers are classes: the lower-case merge functions (`add`) are not.
_NOT_FOR_CONFIGS = {
    "layers": {"Wrapper", "RNN", "GRUCell", "LSTMCell", "SimpleRNNCell", "StackedRNNCells",
               "Lambda", "Pipeline", "JaxLayer", "FlaxLayer", "TorchModuleWrapper",
               "TFSMLayer", "InputLayer"},
    "callbacks": {"CallbackList", "History", "ProgbarLogger", "BackupAndRestore",
                  "LambdaCallback", "LearningRateScheduler", "OrbaxCheckpoint"},
    "optimizers": {"LossScaleOptimizer", "MultiOptimizer"},
    "metrics": {"MeanMetricWrapper"},
}
# Metric strings `compile` resolves from the loss ('accuracy' becomes the sparse,
# categorical or binary accuracy): never made here, always passed to Keras as written.
METRIC_SHORTHANDS = ("accuracy", "acc", "crossentropy", "ce")
# Keyword arguments every layer takes through `Layer.__init__(**kwargs)`.
_LAYER_KWARGS = {"input_shape", "input_dim", "batch_input_shape", "batch_size", "name",
                 "dtype", "trainable", "autocast", "activity_regularizer"}
# Base classes whose **kwargs Keras checks against these names (and refuses the rest).
_CHECKED_KWARGS = {"Layer": _LAYER_KWARGS, "BaseOptimizer": {"decay"}}
# Argument-name endings whose values are themselves Keras objects.
_NESTED_KINDS = {"_initializer": "initializers", "_regularizer": "regularizers",
                 "_constraint": "constraints", "activation": "activations",
                 "learning_rate": "schedules", "layer": "layers"}

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
    obj: Any           # a class or a function (None: a metric shorthand compile resolves)
    is_class: bool
    custom: bool = False  # registered by a plugin (Keras cannot resolve it by name)


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


@functools.cache
def _table(kind: str) -> dict[str, Entry]:
    """Keras's own names of `kind`, scanned once per process."""
    keras = _keras.keras()
    module_name, base_name = KINDS[kind]
    module = keras
    for part in module_name.split("."):
        module = getattr(module, part)
    base = getattr(module, base_name) if base_name else None
    found: dict[str, Entry] = {}
    if kind == "metrics":
        found.update({short: Entry(short, None, False) for short in METRIC_SHORTHANDS})
    for name, obj in vars(module).items():
        if name.startswith("_") or name in _NOT_NAMES:
            continue
        if inspect.isclass(obj):
            if base is not None and issubclass(obj, base) and obj is not base:
                found[name] = Entry(name, obj, True)
        elif callable(obj) and name.islower():
            found.setdefault(name, Entry(name, obj, False))
    for short in _SHORT_NAMES.get(kind, ()):
        try:
            obj = module.get(short)
        except (ValueError, TypeError):
            continue
        cls = obj if inspect.isclass(obj) else type(obj) if base and isinstance(obj, base) \
            else None
        found.setdefault(short, Entry(short, cls or obj, cls is not None))
    return found


def entries(kind: str) -> dict[str, Entry]:
    """Every name of `kind` as Keras spells it, plugins' names included."""
    custom = {n: Entry(n, o, inspect.isclass(o), True) for n, o in _custom[kind].items()}
    return {**_table(kind), **custom} if custom else _table(kind)


def names(kind: str) -> list[str]:
    """Every name of `kind` a config can use, as Keras spells it, in one order (by the
    lower-cased name, then upper case first): scanned once Keras is imported, else read
    from Keras's API files (`kerasnames`), so that listing them (`kerastrain list`)
    imports no TensorFlow."""
    listed: set[str] | None = None
    if "keras" not in sys.modules:
        module, base = KINDS[kind]
        listed = kerasnames.public_names(module, base, _NOT_NAMES)
        if listed is not None:
            listed |= {*_SHORT_NAMES.get(kind, ()), *_custom[kind]}
            if kind == "metrics":
                listed |= set(METRIC_SHORTHANDS)
    if listed is None:
        listed = set(entries(kind))
    unusable = _NOT_FOR_CONFIGS.get(kind, set())
    usable = {n for n in listed if n not in unusable and not (kind == "layers" and n.islower())
              or n in _custom[kind]}
    return sorted(usable, key=lambda n: (n.lower(), n))


@functools.cache
def _by_lower(kind: str) -> dict[str, Entry]:
    return {k.lower(): e for k, e in sorted(_table(kind).items(), reverse=True)}


def lookup(kind: str, name: str) -> Entry:
    """The entry for `name` (exact spelling first, then case-insensitive), or UnknownName
    with the closest names."""
    name = str(name)
    if name in _custom[kind]:
        obj = _custom[kind][name]
        return Entry(name, obj, inspect.isclass(obj), True)
    found = _table(kind).get(name) or _by_lower(kind).get(name.lower())
    if found is None:
        singular = {"losses": "loss", "activations": "activation"}.get(kind, kind.rstrip("s"))
        raise UnknownName(f"unknown {singular} {name!r}.{did_you_mean(name, names(kind))}"
                          f" (kerastrain list {kind} shows all of them)")
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
        if klass.__name__ in _CHECKED_KWARGS:  # Keras refuses any other keyword itself
            return accepted | _CHECKED_KWARGS[klass.__name__]
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
    """A Keras object: an instance of the named class, or the named function.

    Argument values that are themselves Keras objects (`kernel_regularizer: {type: L2,
    l2: 0.01}`, `activation: relu`) are resolved and checked the same way.
    """
    args = dict(args or {})
    entry = lookup(kind, name)
    check_arguments(entry, args)
    if entry.obj is None:
        raise UnknownName(f"{entry.name!r} is resolved by compile from the loss; it has no "
                          "object of its own.")
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
    return entry.obj(**args) if entry.is_class else entry.obj


def identifier(kind: str, name: str, args: dict[str, Any] | None = None) -> Any:
    """What `Model.compile` takes for a loss or metric: Keras's own name where it resolves
    it (so logs are named as Keras names them, and 'accuracy' follows the loss), else the
    object `create` makes."""
    entry = lookup(kind, name)
    if not args and not entry.custom:
        return entry.name
    return create(kind, name, args)


def create_object(kind: str, spec: Any, path: tuple, build: bool = True) -> Any:
    """A Keras object from a config's name or `{type: ..., args}` (a `KerasObject`);
    problems are `KeyProblem`s at `path`. With `build=False` only the name and argument
    names are checked (nothing is made). Losses and metrics come as `identifier`s."""
    name, args = (spec, {}) if isinstance(spec, str) else (spec.type, spec.args)
    type_path = path if isinstance(spec, str) else path + ("type",)
    try:
        if not build:
            check_arguments(lookup(kind, name), args)
            return None
        if kind in ("losses", "metrics"):
            return identifier(kind, name, args)
        return create(kind, name, args)
    except UnknownName as exc:
        raise KeyProblem(type_path, str(exc)) from None
    except BadArguments as exc:
        raise KeyProblem(path + ((exc.argument,) if exc.argument else ()), str(exc)) from None
    except (TypeError, ValueError) as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise KeyProblem(path, f"Keras rejected {name}({shown}): {exc}") from None

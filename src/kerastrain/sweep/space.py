"""The trials of a sweep: the cartesian product of `--grid KEY=V1,V2,...` axes, and
`--random N` draws of `--param KEY=DIST` distributions from a seeded NumPy Generator.

A trial is the `--set` overrides it adds, `{key: value text}`: each value text is given to
the config exactly as `--set KEY=TEXT` would be (parsed as a YAML scalar), so a sweep
accepts what `fit --set` accepts and nothing else."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from kerastrain.errors import UserError, did_you_mean
from kerastrain.yamlnum import scalar

Trial = dict[str, str]
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")


class SweepError(UserError):
    """A sweep argument that cannot be used: exit 2 before anything is trained."""


@dataclass(frozen=True)
class Axis:
    """One `--grid KEY=V1,V2,...`: the values, as texts."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Param:
    """One `--param KEY=DIST:ARGS` of a random sweep."""

    key: str
    kind: str
    args: tuple[Any, ...]


def split_values(text: str) -> list[str]:
    """`a,b,[1,2],'x,y'` -> ['a', 'b', '[1,2]', "'x,y'"]: commas inside brackets, braces or
    quotes belong to the value (YAML flow lists stay whole)."""
    values, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def _key_value(option: str, text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        example = ("training.batch_size=16,32" if option == "--grid"
                   else "compile.optimizer.learning_rate=loguniform:1e-4,1e-1")
        raise SweepError(f"{option} {text!r}: expected KEY=VALUES, e.g. {option} {example}")
    return key.strip(), value.strip()


def parse_axis(text: str) -> Axis:
    key, value = _key_value("--grid", text)
    values = split_values(value)
    if any(not v for v in values):
        raise SweepError(f"--grid {text!r}: an empty value (two commas in a row, or a "
                         "trailing comma).")
    if len(set(values)) < len(values):
        raise SweepError(f"--grid {text!r}: a value is listed twice.")
    return Axis(key, tuple(values))


def _number(text: str, option: str, integer: bool = False) -> float:
    try:
        parsed = scalar(text)
    except yaml.YAMLError:
        parsed = text
    if isinstance(parsed, bool) or not isinstance(parsed, (int, float)) or \
            not math.isfinite(parsed) or (integer and parsed != int(parsed)):
        kind = "an integer" if integer else "a number"
        raise SweepError(f"{option}: {text!r} is not {kind}.")
    return int(parsed) if integer else float(parsed)


def parse_param(text: str) -> Param:
    """`KEY=uniform:a,b`, `loguniform:a,b` (0 < a < b), `int:a,b` (both included) or
    `choice:x,y,z`."""
    key, value = _key_value("--param", text)
    kind, colon, rest = value.partition(":")
    kind = kind.strip().lower()
    option = f"--param {text}"
    if not colon or kind not in DISTRIBUTIONS:
        raise SweepError(f"{option}: unknown distribution {kind!r}."
                         f"{did_you_mean(kind, DISTRIBUTIONS)} Use one of: uniform:LOW,HIGH,"
                         " loguniform:LOW,HIGH, int:LOW,HIGH, choice:A,B,C.")
    parts = split_values(rest)
    if kind == "choice":
        if any(not p for p in parts):
            raise SweepError(f"{option}: choice needs values, e.g. choice:relu,tanh.")
        return Param(key, kind, tuple(parts))
    if len(parts) != 2:
        raise SweepError(f"{option}: {kind} takes two bounds, LOW,HIGH.")
    low, high = (_number(p, option, integer=kind == "int") for p in parts)
    if low > high or (kind != "int" and low == high):
        raise SweepError(f"{option}: LOW must be below HIGH (got {parts[0]}, {parts[1]}).")
    if kind == "loguniform" and low <= 0:
        raise SweepError(f"{option}: loguniform bounds must be above 0 (got {parts[0]}).")
    return Param(key, kind, (low, high))


def yaml_float(value: float) -> str:
    """A float as a text that YAML reads back as a float (6 significant digits): PyYAML
    takes `1e-05` for a string and wants `1.0e-05`."""
    text = f"{value:.6g}"
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent}" if e else mantissa


def grid_trials(axes: list[Axis]) -> list[Trial]:
    """Every combination, the last axis varying fastest."""
    keys = [a.key for a in axes]
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(a.values for a in axes))]


def draw(params: list[Param], n: int, seed: int) -> list[Trial]:
    """`n` draws, each param in turn from one `numpy.random.default_rng(seed)`: the same
    seed and params give the same trials."""
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n):
        trial: Trial = {}
        for p in params:
            if p.kind == "uniform":
                trial[p.key] = yaml_float(rng.uniform(*p.args))
            elif p.kind == "loguniform":
                trial[p.key] = yaml_float(math.exp(rng.uniform(*map(math.log, p.args))))
            elif p.kind == "int":
                trial[p.key] = str(int(rng.integers(p.args[0], p.args[1], endpoint=True)))
            else:
                trial[p.key] = p.args[int(rng.integers(len(p.args)))]
        trials.append(trial)
    return trials


def make_trials(grid: list[str], random: int, params: list[str], seed: int,
                fixed: list[str]) -> list[Trial]:
    """The trials of a sweep: each random draw crossed with every grid point (a grid alone,
    or draws alone, when only one is given). A key may appear in one place only."""
    axes = [parse_axis(t) for t in grid]
    drawn = [parse_param(t) for t in params]
    if random < 0:
        raise SweepError(f"--random {random}: give a number of trials, 1 or more.")
    if drawn and not random:
        raise SweepError("--param needs --random N, the number of trials to draw.")
    if random and not drawn:
        raise SweepError(f"--random {random} needs at least one --param KEY=DIST to draw.")
    if not axes and not drawn:
        raise SweepError("nothing to sweep: give --grid KEY=V1,V2,... or --random N --param "
                         "KEY=DIST.")
    seen: dict[str, str] = {}
    fixed_keys = [t.partition("=")[0].strip() for t in fixed]
    for key, where in [*((k, "--set") for k in fixed_keys), *((a.key, "--grid") for a in axes),
                       *((p.key, "--param") for p in drawn)]:
        if key in seen:
            raise SweepError(f"{key} is given twice ({seen[key]} and {where}); a key is "
                             "either fixed (--set), on the grid or drawn.")
        seen[key] = where
    points = grid_trials(axes) if axes else [{}]
    draws = draw(drawn, random, seed) if drawn else [{}]
    return [{**d, **g} for d in draws for g in points]


def parsed(trial: Trial) -> dict[str, Any]:
    """The override values as the config reads them (YAML scalars), for run.json."""
    values = {}
    for key, text in trial.items():
        try:
            values[key] = scalar(text)
        except yaml.YAMLError:
            values[key] = text
    return values

"""Reading a config: YAML with positions, `--set` overrides, the schema, and errors mapped
back to the file and line (or the override) they came from."""

from __future__ import annotations

import copy
import secrets
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kerastrain.config.schema import Config
from kerastrain.config.yamlpos import (
    PathKey,
    Positions,
    dotted,
    load_yaml,
    refused_tag,
    tag_refusal,
)
from kerastrain.errors import ConfigError, Issue, KeyProblem, did_you_mean
from kerastrain.yamlnum import Loader, scalar


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config together with where each of its keys was written."""

    config: Config
    positions: Positions
    path: Path

    def issue(self, path: PathKey, message: str, hint: str | None = None) -> Issue:
        return self.positions.issue(path, message, hint)

    @contextmanager
    def at_keys(self) -> Iterator[None]:
        """Turn a `KeyProblem` raised inside into a `ConfigError` with its file and line."""
        try:
            yield
        except KeyProblem as exc:
            raise ConfigError([self.issue(exc.path, exc.message, exc.hint)]) from None


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """`a.b.0.c=VALUE` -> (['a', 'b', 0, 'c'], VALUE parsed as a YAML scalar or flow value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([Issue("", f"--set {text!r}: expected KEY=VALUE, "
                                     "e.g. --set training.epochs=50", "--set")])
    try:
        node = yaml.compose(raw, Loader=Loader)
        bad = refused_tag(node) if node is not None else None
        if bad is not None:
            raise ConfigError([Issue(key, tag_refusal(bad), f"--set {text}")])
        value = scalar(raw)
    except yaml.YAMLError as exc:
        raise ConfigError([Issue(key, f"the value {raw!r} is not valid YAML: {exc}",
                                 f"--set {text}")]) from None
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
    return parts, value


def apply_override(data: dict, text: str, positions: Positions) -> None:
    """Set one dotted path in `data` (list items by index), creating mappings as needed."""
    parts, value = parse_override(text)
    where = f"--set {text}"
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = dotted(parts[: depth + 1])
        if isinstance(node, list):
            if not isinstance(part, int):
                raise ConfigError([Issue(here, "this is a list: give an item's index.", where)])
            if part > len(node) or (part == len(node) and not last):
                raise ConfigError([Issue(here, f"index {part} is past the end of a list of "
                                               f"{len(node)} items.", where)])
            if last:
                node[part:part + 1] = [value]
            else:
                node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError([Issue(here, f"{dotted(parts[:depth])} is a value, not a section.",
                                     where)])
        if last:
            node[part] = value
            continue
        if node.get(part) is None:  # absent, or written empty (`training:`)
            node[part] = {}
        node = node[part]
    positions.overrides[tuple(parts)] = where


def _unwrap(annotation: Any) -> list[Any]:
    """The classes an annotation can hold: Optional/Union/list/dict unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return [annotation]
    return [cls for arg in typing.get_args(annotation) for cls in _unwrap(arg)]


def _model_at(path: PathKey) -> type[BaseModel] | None:
    """The schema model that the mapping at `path` is validated against."""
    current: list[Any] = [Config]
    for part in path:
        models = [c for c in current if isinstance(c, type) and issubclass(c, BaseModel)]
        if isinstance(part, int):
            continue
        nxt: list[Any] = []
        for model in models:
            field = model.model_fields.get(part)
            if field is not None:
                nxt.extend(_unwrap(field.annotation))
        current = nxt
    models = [c for c in current if isinstance(c, type) and issubclass(c, BaseModel)]
    return models[0] if models else None


def _value_at(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _data_path(data: Any, loc: tuple) -> PathKey:
    """Keep only the parts of a pydantic location that index the data (drop union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part not in node and isinstance(part, str) \
                and _model_at(tuple(path)) is not None \
                and part in _model_at(tuple(path)).model_fields:
            path.append(part)  # a missing key: name it
            node = None
    return tuple(path)


def _issue_for(error: dict, data: Any, positions: Positions) -> Issue:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        path = _data_path(data, loc)
        model = _model_at(path[:-1])
        allowed = sorted(model.model_fields) if model else []
        key = path[-1] if path else loc[-1]
        hint = f"allowed here: {', '.join(allowed)}" if allowed else None
        return positions.issue(path, f"unknown key {key!r}.{did_you_mean(key, allowed)}", hint)
    if kind == "missing":
        path = _data_path(data, loc)
        key = loc[-1]
        return positions.issue(path, f"the required key {key!r} is missing.")
    path = _data_path(data, loc)
    given = _value_at(data, path)
    message = error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        message = f"{given!r} is not allowed; expected {expected}.{did_you_mean(given, choices)}"
    elif not kind.startswith("value_error") and not isinstance(given, (dict, list)):
        message = f"{message} (got {given!r})."
    return positions.issue(path, message)


def validate_data(data: Any, positions: Positions) -> Config:
    """Check plain config data against the schema; every problem is reported at once."""
    if not isinstance(data, dict):
        raise ConfigError([Issue("", "the config must be a mapping of sections "
                                     "(name, data, model, compile, ...).", positions.file, 1)])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        issues: list[Issue] = []
        seen = set()
        for error in exc.errors():
            issue = _issue_for(error, data, positions)
            if (issue.path, issue.message) not in seen:
                seen.add((issue.path, issue.message))
                issues.append(issue)
        raise ConfigError(issues) from None


PATH_KEYS = tuple(("data", part, key) for part in ("source", "validation", "test")
                  for key in ("path", "target_path")) + (("output", "runs_dir"),)


def _anchored(value: str, key_path: tuple, positions: Positions, base: Path) -> str:
    from_override = any(key_path[:i] in positions.overrides for i in range(len(key_path) + 1))
    anchor = Path.cwd() if from_override else base
    return str((anchor / Path(value).expanduser()).resolve())


def _anchor_paths(data: Any, positions: Positions, base: Path) -> None:
    """Paths written in the file (data files, the runs folder, plugin folders) are relative
    to the file's folder; those given with --set are relative to the working directory.
    All become absolute, so a run's config.yaml finds them again from anywhere; the default
    runs folder is `runs` in the working directory. Plugins are searched in the file's
    folder unless `plugin_path` names others."""
    for key_path in PATH_KEYS:
        parent = _value_at(data, key_path[:-1])
        value = parent.get(key_path[-1]) if isinstance(parent, dict) else None
        if isinstance(value, str) and value and not parent.get("package"):  # not in a package
            parent[key_path[-1]] = _anchored(value, key_path, positions, base)
    if not isinstance(data, dict):
        return
    output = data.setdefault("output", {})
    if isinstance(output, dict) and output.get("runs_dir") is None:
        output["runs_dir"] = str(Path.cwd().resolve() / "runs")  # the default, made absolute
    folders = data.get("plugin_path")
    if folders is None and data.get("plugins"):
        data["plugin_path"] = [str(base.resolve())]
    elif isinstance(folders, list):
        data["plugin_path"] = [_anchored(f, ("plugin_path", i), positions, base)
                               if isinstance(f, str) and f else f
                               for i, f in enumerate(folders)]


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedConfig:
    """Read, override and validate a config file. A missing seed is drawn and recorded."""
    path = Path(path)
    data, positions = load_yaml(path)
    data = copy.deepcopy(data) if isinstance(data, dict) else data
    for text in overrides:
        if not isinstance(data, dict):
            break
        apply_override(data, text, positions)
    if isinstance(data, dict) and data.get("seed") is None:
        data["seed"] = secrets.randbelow(2**31)
    _anchor_paths(data, positions, path.parent)
    config = validate_data(data, positions)
    return LoadedConfig(config, positions, path)

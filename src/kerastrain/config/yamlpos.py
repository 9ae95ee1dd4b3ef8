"""YAML with `safe_load` semantics that remembers the line of every key and item."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kerastrain.errors import ConfigError, Issue

PathKey = tuple  # a key path: ('model', 'layers', 2, 'type')


@dataclass
class Positions:
    """Where each key path of a config came from: a line of `file`, or a --set override."""

    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    overrides: dict[PathKey, str] = field(default_factory=dict)

    def locate(self, path: PathKey) -> tuple[str, int | None]:
        """The source (file or override) and line of `path`, or of its nearest ancestor."""
        path = tuple(path)
        for i in range(len(path), -1, -1):
            prefix = path[:i]
            if prefix in self.overrides:
                return self.overrides[prefix], None
            if prefix in self.lines:
                return self.file, self.lines[prefix]
        return self.file, None

    def issue(self, path: PathKey, message: str, hint: str | None = None) -> Issue:
        source, line = self.locate(path)
        return Issue(dotted(path), message, source, line, hint)


def dotted(path: PathKey) -> str:
    return ".".join(str(p) for p in path)


def _build(node: yaml.Node, path: PathKey, positions: Positions, loader: yaml.SafeLoader) -> Any:
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise ConfigError([Issue(dotted(path), "a mapping key must be a scalar.",
                                         positions.file, key_node.start_mark.line + 1)])
            child = path + (key,)
            if key in result:
                raise ConfigError([Issue(dotted(child), f"the key {key!r} appears twice.",
                                         positions.file, key_node.start_mark.line + 1)])
            positions.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, positions, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), positions, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path) -> tuple[Any, Positions]:
    """Parse `path` into plain Python data and the line of every key path."""
    positions = Positions(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Issue("", "no such config file.", str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Issue("", f"cannot read the config: {exc}", str(path))]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, positions
        return _build(node, (), positions, loader), positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([Issue("", f"not valid YAML: {exc.problem}", str(path), line)]) from None
    finally:
        loader.dispose()

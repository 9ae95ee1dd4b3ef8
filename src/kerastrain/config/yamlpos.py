"""YAML with `safe_load` semantics that remembers the line of every key and item."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kerastrain.errors import ConfigError, Issue
from kerastrain.yamlnum import YAML_TAG, Loader

PathKey = tuple  # a key path: ('model', 'layers', 2, 'type')


@dataclass
class Positions:
    """Where each key path of a config came from: a line of `file`, or a --set override."""

    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    overrides: dict[PathKey, str] = field(default_factory=dict)

    def locate(self, path: PathKey) -> tuple[str, int | None]:
        """The source (file or override) and line of `path`, or of its nearest ancestor.

        An override of `path` or of any ancestor wins over file lines (it replaced what the
        file wrote there), and so does an override below a `path` the file never wrote
        (`--set a.b.c=1` created `a.b`)."""
        path = tuple(path)
        for i in range(len(path), -1, -1):
            if path[:i] in self.overrides:
                return self.overrides[path[:i]], None
        if path and path not in self.lines:
            for key, where in self.overrides.items():
                if key[: len(path)] == path:
                    return where, None
        for i in range(len(path), -1, -1):
            if path[:i] in self.lines:
                return self.file, self.lines[path[:i]]
        return self.file, None

    def issue(self, path: PathKey, message: str, hint: str | None = None) -> Issue:
        """An issue at `path`'s source; at a line of the file that `--set` changed below
        `path`, the message names those overrides too (they may be what is wrong)."""
        source, line = self.locate(path)
        below = [where for key, where in self.overrides.items()
                 if len(key) > len(path) and key[: len(path)] == tuple(path)]
        if path and line is not None and below:
            message = f"{message} (changed by {', '.join(below)})"
        return Issue(dotted(path), message, source, line, hint)


def dotted(path: PathKey) -> str:
    return ".".join(str(p) for p in path)


def refused_tag(node: yaml.Node) -> yaml.Node | None:
    """The first node (keys included) whose tag `safe_load` has no constructor for, such as
    `!!python/object/apply:os.system`; None when every tag is plain YAML."""
    pending, seen = [node], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:  # an alias met again
            continue
        seen.add(id(current))
        if current.tag not in Loader.yaml_constructors:
            return current
        if isinstance(current, yaml.MappingNode):
            pending.extend(n for pair in reversed(current.value) for n in reversed(pair))
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(reversed(current.value))
    return None


def tag_refusal(node: yaml.Node) -> str:
    """Why a tagged node is refused: a config is data, and a tag must never run code."""
    shown = "!!" + node.tag.removeprefix(YAML_TAG) if node.tag.startswith(YAML_TAG) else node.tag
    kind = "unsafe" if "python/" in node.tag else "unknown"
    return (f"{kind} tag refused: {shown}. A config holds plain YAML data (mappings, lists, "
            "strings, numbers, booleans) and is read with safe_load; write the value "
            "without the tag.")


def _refuse_tags(node: yaml.Node, path: PathKey, positions: Positions) -> None:
    bad = refused_tag(node)
    if bad is not None:
        raise ConfigError([Issue(dotted(path), tag_refusal(bad), positions.file,
                                 bad.start_mark.line + 1)])


MAX_ENTRIES = 100_000  # keys and items, aliases expanded: far above any real experiment


def _build(node: yaml.Node, path: PathKey, positions: Positions, loader: Loader,
           within: frozenset[int] = frozenset()) -> Any:
    """Plain data from `node`, recording the line of every key path. `within` holds the
    collections being built around it, so that an alias of one of them is refused rather
    than expanded forever."""
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in within or len(positions.lines) > MAX_ENTRIES:
        raise ConfigError([Issue(dotted(path), "YAML aliases here refer to themselves or "
                                 f"expand to more than {MAX_ENTRIES} keys and items; write "
                                 "the values out.", positions.file, node.start_mark.line + 1)])
    within = within | {id(node)}
    plain = {yaml.MappingNode: f"{YAML_TAG}map", yaml.SequenceNode: f"{YAML_TAG}seq"}
    if node.tag != plain.get(type(node)):  # a scalar, or a tagged collection (!!set, !!omap)
        _refuse_tags(node, path, positions)
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            _refuse_tags(key_node, path, positions)
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise ConfigError([Issue(dotted(path), "a mapping key must be a scalar.",
                                         positions.file, key_node.start_mark.line + 1)])
            child = path + (key,)
            if key in result:
                raise ConfigError([Issue(dotted(child), f"the key {key!r} appears twice.",
                                         positions.file, key_node.start_mark.line + 1)])
            positions.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, positions, loader, within)
        return result
    return [_build(item, path + (i,), positions, loader, within)
            for i, item in enumerate(node.value)]


def load_yaml(path: Path) -> tuple[Any, Positions]:
    """Parse `path` into plain Python data and the line of every key path."""
    positions = Positions(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Issue("", "no such config file.", str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Issue("", f"cannot read the config: {exc}", str(path))]) from None
    loader = Loader(text)
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

"""The YAML loader every config value is read with, without pydantic or TensorFlow: what
the config file, `--set`, a sweep's values and `runs`' listing of `--set` overrides share."""

from __future__ import annotations

import re
from typing import Any

import yaml

YAML_TAG = "tag:yaml.org,2002:"


class Loader(yaml.SafeLoader):
    """`safe_load`'s loader, except that exponent numbers without a dot (`1e-3`, `1E5`,
    `-2.5e+3`) are floats, as in YAML 1.2 and as users write them; YAML 1.1 reads them as
    strings. Every config value (the file, `--set`, a sweep's values) is read with it."""


Loader.add_implicit_resolver(
    f"{YAML_TAG}float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def scalar(text: str) -> Any:
    """`text` as a config reads a value: YAML with `Loader` (None for a blank text)."""
    return yaml.load(text, Loader=Loader) if text.strip() else None

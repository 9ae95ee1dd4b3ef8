"""Plugins: Python modules a config names under `plugins:` that register custom layers,
losses, metrics... with `kerastrain.registry.register`.

They are imported before any name is checked (with the config file's folder first on
`sys.path`, so a module beside the config is found), and again by `evaluate` and
`predict` before `model.keras` is loaded, so Keras can deserialize the custom objects.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kerastrain import _keras
from kerastrain.errors import KeyProblem


@contextmanager
def _searching(folders: list[Path]) -> Iterator[None]:
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def import_plugins(modules: list[str], folders: list[Path]) -> None:
    """Import each module (searching `folders` first); a `KeyProblem` at `plugins.<i>` for
    one that is missing or fails while importing."""
    if modules:
        _keras.keras()  # plugins import Keras: let it come in quietly, as everywhere else
    with _searching(folders):
        for i, name in enumerate(modules):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                    raise KeyProblem(("plugins", i), f"the plugin {name!r} imports {exc.name!r}, "
                                     "which is not installed.") from None
                shown = ", ".join(map(str, folders)) or "no folder"
                raise KeyProblem(("plugins", i), f"no module {name!r} in {shown} or on "
                                 "sys.path (PYTHONPATH).") from None
            except Exception as exc:  # a plugin can fail in any way while importing
                raise KeyProblem(("plugins", i), f"importing the plugin {name!r} failed: "
                                 f"{type(exc).__name__}: {exc}") from None

"""Commands for writing configs: list (Keras names), schema (for editors), init (a
starter config)."""

from __future__ import annotations

import json
import shlex
import sys
from enum import Enum
from typing import Annotated

import typer

from kerastrain.cli.app import JsonOption, app, guard, out, print_json
from kerastrain.registry import KINDS

Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)  # every kind the registry has


@app.command("list")
def list_names(kind: Annotated[Kind, typer.Argument(
    metavar="KIND", help="Which Keras names to list.")],
               json_: JsonOption = False) -> None:
    """List the Keras names a config can use."""

    def action() -> None:
        from kerastrain import registry

        names = registry.names(kind.value)
        if json_:
            print_json({kind.value: names})
        else:
            sys.stdout.write("\n".join(names) + "\n")

    guard(action, json_)


@app.command()
def schema() -> None:
    """Print the config's JSON schema, for editors.

    See the README's Editors section."""

    def action() -> None:
        from kerastrain.schema_export import config_json_schema

        sys.stdout.write(json.dumps(config_json_schema(), indent=2) + "\n")

    guard(action)


class StarterTask(str, Enum):
    classification = "classification"
    regression = "regression"


@app.command()
def init(dataset: Annotated[str | None, typer.Option(
             help="A scikit-learn bundled set: iris, digits, wine, breast_cancer, diabetes "
                  "(default: iris, or diabetes for --task regression).")] = None,
         task: Annotated[StarterTask | None, typer.Option(
             help="Default: the dataset's own task.")] = None,
         output: Annotated[str | None, typer.Option(
             "--output", "-o", help="Where to write it (default: DATASET.yaml; - for "
                                    "stdout). An existing file is never overwritten.")]
         = None) -> None:
    """Write a commented starter config that runs as written."""

    def action() -> None:
        from kerastrain.starter import choose, starter_config, write_starter

        chosen, _ = choose(dataset, task.value if task else None)
        if output == "-":
            sys.stdout.write(starter_config(chosen, task.value if task else None))
            return
        path = write_starter(output or f"{chosen}.yaml", chosen, task.value if task else None)
        quoted = shlex.quote(str(path))
        out.print(f"wrote {path}\n  kerastrain validate {quoted}\n  kerastrain fit {quoted}",
                  markup=False)

    guard(action)

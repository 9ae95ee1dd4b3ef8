"""Commands that hand a run's model on: export (a SavedModel, .keras, TFLite or ONNX with
the preprocessing inside) and serve (an HTTP prediction server)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from kerastrain.cli.app import JsonOption, QuietOption, UnsafeOption, app, guard, out, print_json


class Format(str, Enum):
    saved_model = "saved_model"
    keras = "keras"
    tflite = "tflite"
    onnx = "onnx"


FoldOption = Annotated[str | None, typer.Option(
    help="A cross-validation run: use this fold's model (e.g. 1-2) instead of the refit "
         "one.")]


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
           format_: Annotated[Format, typer.Option("--format", help="What to write.")],
           output: Annotated[Path, typer.Option("--output", "-o",
                                                help="The folder to write (made).")],
           fold: FoldOption = None,
           overwrite: Annotated[bool, typer.Option(help="Replace --output if it exists.")]
           = False,
           unsafe: UnsafeOption = False, quiet: QuietOption = False,
           json_: JsonOption = False) -> None:
    """Export the run's model with its fitted preprocessing inside: raw columns in."""

    def action() -> None:
        from kerastrain.export.formats import export as export_run

        result = export_run(run_dir, format_.value, output, fold, overwrite, unsafe)
        if json_:
            print_json(result)
        elif quiet:
            sys.stdout.write(f"{result['output']}\n")
        else:
            out.print(f"{result['format']} written to {result['output']}: inputs "
                      f"{', '.join(result['inputs'])}; outputs "
                      f"{', '.join(result['outputs'])} (export.json, README.md)", markup=False)

    guard(action, json_)

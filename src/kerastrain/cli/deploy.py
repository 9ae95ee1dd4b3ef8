"""Commands that hand a run's model on: export (a SavedModel, .keras, TFLite or ONNX with
the preprocessing inside) and serve (an HTTP prediction server)."""

from __future__ import annotations

import os
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
    """Export the model with its preprocessing inside, for raw columns.

    The run's fitted preprocessing layers go in front of its model, so the export takes
    one raw value per column (strings, numbers, empty fields) and returns the labels and
    probabilities, or the values. See docs/export.md."""

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


@app.command()
def serve(run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
          host: Annotated[str, typer.Option(help="The address to listen on (another than "
                                                 "127.0.0.1 opens it to the network).")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(help="The port to listen on.")] = 8000,
          fold: FoldOption = None,
          max_bytes: Annotated[int, typer.Option(help="The largest request body taken "
                                                      "(413 above it).")] = 10 * 1024 * 1024,
          unsafe: UnsafeOption = False) -> None:
    """Serve the run's model over HTTP (POST /predict).

    Also GET /health, GET /schema and the API's docs at /docs. Set KERASTRAIN_API_KEY
    to require that key in every request's X-API-Key header."""

    def action() -> None:
        from kerastrain.serving.app import API_KEY_ENV
        from kerastrain.serving.app import serve as serve_run

        def ready(url: str) -> None:
            sys.stderr.write(f"serving {run_dir} on {url} (docs at {url}/docs); Ctrl-C "
                             "stops it\n")
            sys.stderr.flush()

        serve_run(run_dir, host, port, fold, unsafe, max_bytes,
                  os.environ.get(API_KEY_ENV) or None, ready)

    guard(action)

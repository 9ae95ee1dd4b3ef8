"""The command line: parse, call one function, render, map errors to exit codes.

0 success; 2 the user's mistake (config, data, arguments), with a message and no
traceback; 1 an internal error; 130 interrupted. TensorFlow is imported only inside the
commands that build or run a model.
"""

from __future__ import annotations

import json
import shlex
import sys
import traceback
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kerastrain.errors import UserError
from kerastrain.registry import KINDS

app = typer.Typer(
    name="kerastrain",
    help="Turn a YAML experiment file into a trained, validated Keras model and a run directory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config field by its dotted path (repeatable), e.g. training.epochs=50.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the essential "
                                           "result on stdout; no progress.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _guard(action: Callable[[], Any], as_json: bool = False) -> Any:
    """Run a command body, turning errors into messages and exit codes (with --json, the
    error is also the one JSON object on stdout)."""

    def fail(code: int, message: str, prefix: str = "", detail: str = "",
             **extra: Any) -> typer.Exit:
        err.print(prefix + message + detail, markup=False)
        if as_json:
            _print_json({"status": "error", "exit_code": code, "error": message, **extra})
        return typer.Exit(code)

    try:
        return action()
    except UserError as exc:
        message = exc.render()
        if exc.option in OPTION_HINTS:
            message += f"  {OPTION_HINTS[exc.option]}"
        raise fail(2, message, "error: ") from None
    except KeyboardInterrupt as exc:
        run_dir = getattr(exc, "run_dir", None)
        if run_dir is None:
            raise fail(130, "interrupted.") from None
        command = f"kerastrain resume {shlex.quote(str(run_dir))}"
        raise fail(130, f"interrupted. The run directory {run_dir} keeps every finished fold "
                   f"and epoch; continue it with:\n  {command}", run_dir=str(run_dir),
                   resume=command) from None
    except typer.Exit:
        raise
    except Exception:
        raise fail(1, "internal error (a bug in kerastrain; please report it with this trace):",
                   detail="\n" + traceback.format_exc()) from None


# How the command line gets past an error whose library call would take this argument.
OPTION_HINTS = {"force": "Pass --force.", "data": "Use --data FILE.",
                "overwrite": "Pass --overwrite to replace it."}


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def _progress(quiet: bool, json_: bool) -> Any:
    """The live display on stderr, unless the output is for a script."""
    if quiet or json_:
        return None
    from kerastrain.render import ConsoleProgress

    return ConsoleProgress(err)


@app.command()
def fit(config: Annotated[Path, typer.Argument(help="The experiment's YAML file.")],
        set_: SetOption = None, quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Validate everything, then train and write a new run directory."""

    def action() -> None:
        from kerastrain.config import load_config

        loaded = load_config(config, set_ or [])
        from kerastrain.training.fit import fit as fit_run

        run, metrics = fit_run(loaded, _progress(quiet, json_), sys.argv)
        _render_trained(run, metrics, loaded.config.name, quiet, json_)

    _guard(action, json_)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="An interrupted or failed run.")],
           force: Annotated[bool, typer.Option(
               "--force", help="Also resume a run still marked running (its process died "
                               "without recording it).")]
           = False,
           set_: Annotated[list[str] | None, typer.Option("--set", hidden=True)] = None,
           quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Continue an interrupted or failed run, in its own directory.

    Finished folds are kept; the interrupted one continues from its last epoch, with the
    run's own config.yaml (hence no --set). See docs/resume.md."""

    def action() -> None:
        from kerastrain.errors import RunDirError

        if set_:
            raise RunDirError(
                "resume takes no --set: a resumed run continues with exactly the config it "
                "started with (its config.yaml), so that its folds and epochs stay one "
                "experiment. To change the config, start a new run: kerastrain fit "
                f"{shlex.quote(str(run_dir / 'config.yaml'))} --set ...")
        from kerastrain.config import load_config
        from kerastrain.training.resume import resume as resume_run

        run, metrics = resume_run(run_dir, _progress(quiet, json_), sys.argv, force)
        name = load_config(run.config).config.name
        _render_trained(run, metrics, name, quiet, json_)

    _guard(action, json_)


def _render_trained(run: Any, metrics: dict[str, Any], name: str, quiet: bool,
                    json_: bool) -> None:
    """What `fit` and `resume` print once training is done."""
    from kerastrain.render import metrics_table
    from kerastrain.rundir import read_json
    from kerastrain.training.report import cv_table

    show_progress = not quiet and not json_
    info = run.info()
    cv = read_json(run.cv_summary) if run.cv_summary.exists() else None
    if not show_progress:
        for warning in info.get("warnings", []):
            err.print(f"warning: {warning}", markup=False)
    if json_:
        _print_json({"run_dir": str(run.path), "status": "completed", "metrics": metrics,
                     **({"cv_summary": cv} if cv else {})})
    elif quiet:
        sys.stdout.write(f"{run.path}\n")
    else:
        title = f"{name}: final metrics"
        if cv:
            out.print(cv_table(cv))
            title += f" (validation: mean of {len(cv['folds'])} folds"
            title += "; test: the refit model)" if "test" in metrics else ")"
        out.print(metrics_table(title, metrics))
        if info.get("no_model_reason"):
            out.print(f"note: {info['no_model_reason']}", markup=False)
        out.print(f"run directory: {run.path}", markup=False)


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="The experiment's YAML file.")],
             set_: SetOption = None, quiet: QuietOption = False,
             json_: JsonOption = False) -> None:
    """Every check fit makes (schema, names, data, splits, building the model), no training."""

    def action() -> None:
        from kerastrain.config import load_config

        loaded = load_config(config, set_ or [])
        from kerastrain.training.check import check

        summary = check(loaded).summary
        if json_:
            _print_json({"config": str(config), "valid": True, **summary})
        elif not quiet:
            table = Table(title=f"{config}: valid", show_header=False)
            for key, value in summary.items():
                table.add_row(key, ", ".join(map(str, value)) if isinstance(value, list)
                              else str(value))
            out.print(table)

    _guard(action, json_)


@app.command()
def evaluate(run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
             data: Annotated[Path | None, typer.Option(
                 help="Score the rows of this file (CSV, Parquet, NPZ) instead of the test "
                      "split.")] = None,
             quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Score the run's model on its held-out test split, or on --data FILE."""

    def action() -> None:
        from kerastrain.inference import evaluate as evaluate_run
        from kerastrain.render import metrics_table

        result = evaluate_run(run_dir, data)
        if json_:
            _print_json(result)
        elif quiet:
            sys.stdout.write(" ".join(f"{k}={v:.6g}" for k, v in result["metrics"].items())
                             + "\n")
        else:
            title = f"{result['run_dir']}: {result['split']}, {result['rows']} rows"
            out.print(metrics_table(title, {result["split"].split(" ")[0]: result["metrics"]}))

    _guard(action, json_)


@app.command()
def predict(run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
            input_file: Annotated[Path, typer.Argument(
                metavar="INPUT", help="Raw rows to predict (CSV, Parquet, NPZ).")],
            output: Annotated[Path, typer.Option("--output", "-o",
                                                 help="Where to write predictions.")],
            overwrite: Annotated[bool, typer.Option(help="Replace --output if it exists.")]
            = False,
            quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Apply the run's saved preprocessing and model to new raw rows."""

    def action() -> None:
        from kerastrain.inference import predict as predict_run

        result = predict_run(run_dir, input_file, output, overwrite)
        if json_:
            _print_json(result)
        elif quiet:
            sys.stdout.write(f"{result['output']}\n")
        else:
            out.print(f"{result['rows']} predictions written to {result['output']} "
                      f"({', '.join(result['columns'])})", markup=False)

    _guard(action, json_)


@app.command()
def runs(runs_dir: Annotated[Path, typer.Argument(help="Where the runs are.")] = Path("runs"),
         json_: JsonOption = False) -> None:
    """List the runs in a runs directory with their status and final metrics."""

    def action() -> None:
        from kerastrain.rundir import list_runs

        found = list_runs(runs_dir)
        if json_:
            _print_json({"runs": found})
            return
        table = Table(title=f"{runs_dir}: {len(found)} runs")
        for column in ("run", "status", "started", "validation", "test"):
            table.add_column(column)
        for run in found:
            shown = [", ".join(f"{k}={v:.4g}" for k, v in run["metrics"].get(split, {}).items())
                     for split in ("validation", "test")]
            table.add_row(Path(run["run_dir"]).name, str(run["status"]),
                          str(run["started_at"] or ""), *shown)
        out.print(table)

    _guard(action, json_)


Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)  # every kind the registry has


@app.command("list")
def list_names(kind: Annotated[Kind, typer.Argument(help="Which Keras names to list.")],
               json_: JsonOption = False) -> None:
    """List the Keras names a config can use."""

    def action() -> None:
        from kerastrain import registry

        names = registry.names(kind.value)
        if json_:
            _print_json({kind.value: names})
        else:
            sys.stdout.write("\n".join(names) + "\n")

    _guard(action, json_)


def main() -> None:
    app()

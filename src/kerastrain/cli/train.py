"""Commands that train or use a model: fit, resume, validate, evaluate, predict."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kerastrain.cli.app import (
    JsonOption,
    QuietOption,
    RunSetOption,
    SetOption,
    UnsafeOption,
    app,
    err,
    guard,
    out,
    print_json,
    progress,
)
from kerastrain.cli.render import show


@app.command()
def fit(config: Annotated[Path, typer.Argument(
    metavar="CONFIG", help="The experiment's YAML file.")],
        set_: SetOption = None, quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Validate everything, then train and write a new run directory."""

    def action() -> None:
        from kerastrain.config import load_config

        loaded = load_config(config, set_ or [])
        from kerastrain.training.pool import fold_pool

        # the workers start (forked) before this process loads TensorFlow: they load it
        # side by side with it, not after it
        with fold_pool(loaded.config) as pool:
            from kerastrain.training.fit import fit as fit_run

            run, metrics = fit_run(loaded, progress(quiet, json_), sys.argv, pool=pool)
        _render_trained(run, metrics, loaded.config.name, quiet, json_)

    guard(action, json_, quiet)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(
    metavar="RUN", help="An interrupted or failed run.")],
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
        from kerastrain.rundir import RunDir
        from kerastrain.training.pool import WorkerPool, fold_pool

        run = RunDir(run_dir)  # a folder that is no run is refused by resume_run
        cfg = load_config(run.config).config if run.config.is_file() and \
            run.info_file.is_file() else None
        # as fit's: the workers start before TensorFlow loads here
        with fold_pool(cfg) if cfg else WorkerPool(1) as pool:
            from kerastrain.training.resume import resume as resume_run

            run, metrics = resume_run(run_dir, progress(quiet, json_), sys.argv, force, pool)
        name = (cfg or load_config(run.config).config).name
        _render_trained(run, metrics, name, quiet, json_)

    guard(action, json_, quiet)


def _render_trained(run: Any, metrics: dict[str, Any], name: str, quiet: bool,
                    json_: bool) -> None:
    """What `fit` and `resume` print once training is done."""
    from kerastrain.cli.render import metrics_table
    from kerastrain.rundir import read_json
    from kerastrain.training.report import cv_table

    show_progress = not quiet and not json_
    path = Path(run.path).absolute()  # fit's and resume's alike, however RUN was given
    info = run.info()
    cv = read_json(run.cv_summary) if run.cv_summary.exists() else None
    if not show_progress:
        for warning in info.get("warnings", []):
            err.print(f"warning: {warning}", markup=False)
    notes = list(info.get("notes", []))  # optional outputs skipped (plots, model.png)
    if cv and not quiet and any(m.get("ci95_clipped") for m in cv["metrics"].values()):
        notes.append("a 95% CI marked * is clipped to its metric's range (see the note in "
                     "cv_summary.json).")
    if json_:
        print_json({"run_dir": str(path), "status": "completed", "metrics": metrics,
                    "notes": notes, **({"cv_summary": cv} if cv else {})})
        return
    for note in notes:
        err.print(f"note: {note}", markup=False)
    if quiet:
        sys.stdout.write(f"{path}\n")
    else:
        title = f"{name}: final metrics"
        if cv:
            show(out, cv_table(cv))
            title += f" (validation: mean of {len(cv['folds'])} folds"
            title += "; test: the refit model)" if "test" in metrics else ")"
        show(out, metrics_table(title, metrics))
        if info.get("no_model_reason"):
            out.print(f"note: {info['no_model_reason']}", markup=False)
        out.print(f"run directory: {path}", markup=False)


@app.command()
def validate(config: Annotated[Path, typer.Argument(
    metavar="CONFIG", help="The experiment's YAML file.")],
             set_: SetOption = None, quiet: QuietOption = False,
             json_: JsonOption = False) -> None:
    """Run every check fit makes, and train nothing.

    The schema, the Keras names, the data, the splits, and building the model."""

    def action() -> None:
        from kerastrain.config import load_config

        loaded = load_config(config, set_ or [])
        from kerastrain.training.check import check

        summary = check(loaded).summary
        if json_:
            print_json({"config": str(config), "valid": True, **summary})
        elif not quiet:
            table = Table(title=f"{config}: valid", show_header=False)
            for key, value in summary.items():
                if key != "columns":
                    table.add_row(key, ", ".join(map(str, value)) if isinstance(value, list)
                                  else str(value))
            show(out, table)
            from kerastrain.cli.render import columns_table

            show(out, columns_table(summary["columns"]))

    guard(action, json_)


@app.command()
def evaluate(run_dir: Annotated[Path, typer.Argument(
    metavar="RUN", help="A completed run directory.")],
             data: Annotated[Path | None, typer.Option(
                 help="Score the rows of this file (CSV, Parquet, NPZ) instead of the test "
                      "split.")] = None,
             set_: RunSetOption = None, unsafe: UnsafeOption = False,
             quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Score the run's model on its test split, or on --data FILE."""

    def action() -> None:
        from kerastrain.cli.render import metrics_table
        from kerastrain.inference import evaluate as evaluate_run

        result = evaluate_run(run_dir, data, overrides=set_ or [], unsafe=unsafe)
        if json_:
            print_json(result)
        elif quiet:
            sys.stdout.write(" ".join(f"{k}={v:.6g}" for k, v in result["metrics"].items())
                             + "\n")
        else:
            title = f"{result['run_dir']}: {result['split']}, {result['rows']} rows"
            show(out, metrics_table(title, {result["split"].split(" ")[0]: result["metrics"]}))
            for note in result["notes"]:
                out.print(f"note: {note}", markup=False)

    guard(action, json_)


@app.command()
def predict(run_dir: Annotated[Path, typer.Argument(
    metavar="RUN", help="A completed run directory.")],
            inputs: Annotated[list[Path], typer.Argument(
                metavar="INPUT...", help="Raw rows to predict (CSV, Parquet, NPZ); for a run "
                     "on an image or text folder, a folder of files, or files.")],
            output: Annotated[Path, typer.Option("--output", "-o",
                                                 help="Where to write predictions.")],
            overwrite: Annotated[bool, typer.Option(help="Replace --output if it exists.")]
            = False,
            keep: Annotated[list[str] | None, typer.Option(
                help="Copy this input column to the output, before the predictions (e.g. an "
                     "id); repeat for more.")] = None,
            set_: RunSetOption = None, unsafe: UnsafeOption = False,
            quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Apply the run's saved preprocessing and model to new raw rows."""

    def action() -> None:
        from kerastrain.inference import predict as predict_run

        result = predict_run(run_dir, inputs[0] if len(inputs) == 1 else inputs, output,
                             overwrite, overrides=set_ or [],
                             unsafe=unsafe, keep=keep or [])
        if json_:
            print_json(result)
        elif quiet:
            sys.stdout.write(f"{result['output']}\n")
        else:
            out.print(f"{result['rows']} predictions written to {result['output']} "
                      f"({', '.join(result['columns'])})", markup=False)
            for note in result["notes"]:
                out.print(f"note: {note}", markup=False)

    guard(action, json_)

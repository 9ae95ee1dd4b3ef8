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
from rich.text import Text
from typer.core import TyperGroup

from kerastrain.errors import UserError

app = typer.Typer(
    name="kerastrain",
    help="Turn a YAML experiment file into a trained, validated Keras model and a run directory.",
    no_args_is_help=True,
    add_completion=True,
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
        raise fail(2, exc.render(), "error: ") from None
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


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def _metrics_table(title: str, metrics: dict[str, dict[str, float]]) -> Table:
    names = sorted({k for scores in metrics.values() for k in scores})
    table = Table(title=title)
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for split, scores in metrics.items():
        table.add_row(split, *[f"{scores[n]:.4f}" if n in scores else "" for n in names])
    return table


def _cv_table(summary: dict[str, Any]) -> Table:
    """Every metric per fold, then its mean, sample std and 95% confidence interval."""
    metrics = summary["metrics"]
    names = list(metrics)
    table = Table(title=f"cross-validation: {summary['splitter']}")
    table.add_column("fold")
    for name in names:
        table.add_column(name, justify="right")
    for fold in summary["folds"]:
        table.add_row(fold, *[f"{metrics[n]['per_fold'][fold]:.4f}" for n in names])
    table.add_section()
    for row in ("mean", "std"):
        table.add_row(row, *["" if metrics[n][row] is None else f"{metrics[n][row]:.4f}"
                             for n in names])
    table.add_row("95% CI", *["" if metrics[n]["ci95"] is None else
                              f"{metrics[n]['ci95'][0]:.4f} .. {metrics[n]['ci95'][1]:.4f}"
                              for n in names])
    return table


@app.command()
def fit(config: Annotated[Path, typer.Argument(help="The experiment's YAML file.")],
        set_: SetOption = None, quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Validate everything, then train and write a new run directory."""

    def action() -> None:
        from kerastrain.config import load_config

        loaded = load_config(config, set_ or [])
        from kerastrain.training.fit import fit as fit_run

        console = err if not quiet and not json_ else None
        run, metrics = fit_run(loaded, console, sys.argv)
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
        from kerastrain.training.resume import resume as resume_run

        console = err if not quiet and not json_ else None
        run, metrics = resume_run(run_dir, console, sys.argv, force)
        from kerastrain.config import load_config

        name = load_config(run.path / "config.yaml").config.name
        _render_trained(run, metrics, name, quiet, json_)

    _guard(action, json_)


def _render_trained(run: Any, metrics: dict[str, Any], name: str, quiet: bool,
                    json_: bool) -> None:
    """What `fit` and `resume` print once training is done."""
    show_progress = not quiet and not json_
    info = run.info()
    cv = run.read_json("cv_summary.json") if (run.path / "cv_summary.json").exists() \
        else None
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
            out.print(_cv_table(cv))
            title += f" (validation: mean of {len(cv['folds'])} folds"
            title += "; test: the refit model)" if "test" in metrics else ")"
        out.print(_metrics_table(title, metrics))
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
        from kerastrain.training.fit import check

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

        result = evaluate_run(run_dir, data)
        if json_:
            _print_json(result)
        elif quiet:
            sys.stdout.write(" ".join(f"{k}={v:.6g}" for k, v in result["metrics"].items())
                             + "\n")
        else:
            title = f"{result['run_dir']}: {result['split']}, {result['rows']} rows"
            out.print(_metrics_table(title, {result["split"].split(" ")[0]: result["metrics"]}))

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


class Kind(str, Enum):
    layers = "layers"
    optimizers = "optimizers"
    losses = "losses"
    metrics = "metrics"
    callbacks = "callbacks"
    activations = "activations"
    initializers = "initializers"
    regularizers = "regularizers"
    constraints = "constraints"


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


# -- reading runs back: runs, compare; editors: schema, init --------------------------------


class _RunsGroup(TyperGroup):
    """`kerastrain runs [RUNS_DIR] [options]` lists runs (the `list` subcommand) unless the
    first word names a subcommand: `runs show RUN`, `runs compare RUN RUN...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


runs_app = typer.Typer(
    cls=_RunsGroup, rich_markup_mode=None,
    help="List runs (kerastrain runs [RUNS_DIR] [options], the same as runs list), show one "
         "(runs show RUN), or compare several (runs compare RUN RUN...).")
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
        runs_dir: Annotated[Path | None, typer.Argument(
            metavar="RUNS_DIR", help="Where the runs are (default: runs).",
            show_default=False)] = None,
        name: Annotated[str | None, typer.Option(
            help="Only runs whose name holds this text, or matches this glob (iris-*).")]
        = None,
        status: Annotated[list[str] | None, typer.Option(
            metavar="STATUS", help="Only runs of this status (repeatable): running, "
                                   "completed, failed, interrupted, unreadable.")] = None,
        sweep: Annotated[Path | None, typer.Option(
            help="Only the runs a sweep directory's manifest.csv lists, wherever they are "
                 "(instead of RUNS_DIR).")] = None,
        sort: Annotated[str | None, typer.Option(
            metavar="METRIC", help="Best first by this metric: val_loss, validation.loss, "
                                   "test.accuracy (lower is better for losses and errors, "
                                   "higher for accuracy, auc, ...).")] = None,
        json_: JsonOption = False,
        csv_: Annotated[bool, typer.Option("--csv", help="Print the runs as CSV on stdout.")]
        = False) -> None:
    """List runs with their status and final metrics (imports no TensorFlow)."""

    def action() -> None:
        from kerastrain import runs

        if sweep is not None and runs_dir is not None:
            raise runs.RunsError("give either RUNS_DIR or --sweep DIR, not both.")
        found = runs.sweep_runs(sweep) if sweep is not None else \
            runs.find_runs(runs_dir or Path("runs"))
        found = runs.filter_runs(found, name, status or ())
        order = None
        if sort:
            found, order = runs.sort_runs(found, sort)
            if not json_:
                err.print(f"sorted by {order['metric']}: {order['order']}", markup=False)
        if json_:
            _print_json({"runs": found, **({"sort": order} if order else {})})
        elif csv_:
            sys.stdout.write(runs.to_csv(found))
        else:
            where = sweep if sweep is not None else runs_dir or Path("runs")
            out.print(_runs_table(f"{where}: {len(found)} runs", found))

    _guard(action, json_)


def _runs_table(title: str, found: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("run", "status", "started", "validation", "test"):
        table.add_column(column)
    for run in found:
        shown = [", ".join(f"{k}={v:.4g}" for k, v in run["metrics"].get(split, {}).items()
                           if isinstance(v, (int, float)))
                 for split in ("validation", "test")]
        table.add_row(Text(Path(run["run_dir"]).name), str(run["status"]),
                      str(run["started_at"] or ""), *map(Text, shown))
    return table


@runs_app.command("show")
def runs_show(run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
              json_: JsonOption = False) -> None:
    """One run: status, config summary, metrics, and where its files are."""

    def action() -> None:
        from kerastrain.runs import show_run

        shown = show_run(run_dir)
        if json_:
            _print_json(shown)
            return
        head = Table(title=shown["run_dir"], show_header=False)
        for key in ("name", "status", "started_at", "finished_at", "duration_s", "seed",
                    "task", "strategy", "error", "no_model_reason"):
            if key in shown:
                head.add_row(key, Text(str(shown[key])))
        for key, value in shown["overrides"].items():
            head.add_row(f"--set {key}", Text(str(value)))
        for key, value in shown["config"].items():
            head.add_row(f"config: {key}", Text(str(value)))
        out.print(head)
        if "cv_summary" in shown and shown["cv_summary"].get("metrics"):
            out.print(_cv_table(shown["cv_summary"]))
        if shown["metrics"]:
            out.print(_metrics_table("final metrics", shown["metrics"]))
        for problem in shown["problems"]:
            out.print(f"unreadable: {problem}", markup=False)
        files = Table(title="files", show_header=False)
        for file_name, path in shown["files"].items():
            files.add_row(Text(file_name), Text(path))
        out.print(files)

    _guard(action, json_)


@runs_app.command("compare")
def runs_compare(run_dirs: Annotated[list[Path], typer.Argument(
                     metavar="RUN...", help="Two or more run directories.")],
                 json_: JsonOption = False) -> None:
    """The config keys that differ between runs (dotted paths), and their metrics side by
    side."""

    def action() -> None:
        from kerastrain.runs import compare_configs

        result = compare_configs(run_dirs)
        if json_:
            _print_json(result)
            return
        caption = Text("\n".join(f"{i}: {run}" for i, run in enumerate(result["runs"], 1)))
        for title, rows, fmt, missing in (
                ("config keys that differ", result["config_differences"], str, "(not set)"),
                ("metrics", result["metrics"], lambda v: f"{v:.4g}", "")):
            table = Table(title=title, caption=caption if title == "metrics" else None,
                          caption_justify="left")
            table.add_column("key", no_wrap=True)
            for i in range(1, len(result["runs"]) + 1):
                table.add_column(str(i), justify="right" if title == "metrics" else "left")
            for key, values in rows.items():
                table.add_row(Text(key), *[Text(missing if v is None else fmt(v))
                                           for v in values])
            out.print(table)

    _guard(action, json_)


class Direction(str, Enum):
    auto = "auto"
    lower = "lower"
    higher = "higher"


@app.command()
def compare(run_a: Annotated[Path, typer.Argument(help="A cross-validation run (A).")],
            run_b: Annotated[Path, typer.Argument(help="A run on the same folds (B).")],
            metric: Annotated[str, typer.Option(
                help="The per-fold metric to compare (as in cv_summary.json).")] = "loss",
            direction: Annotated[Direction, typer.Option(
                help="Whether lower or higher is better; auto: from the metric's name.")]
            = Direction.auto,
            json_: JsonOption = False) -> None:
    """Paired comparison of two cross-validation runs on identical folds: per-fold
    differences B - A and the corrected resampled t-test (docs/compare.md)."""

    def action() -> None:
        from kerastrain.compare import compare_runs

        result = compare_runs(run_a, run_b, metric,
                              None if direction is Direction.auto else direction.value)
        if json_:
            _print_json(result.to_json())
            return
        table = Table(title=f"{metric} per fold",
                      caption=Text(f"A: {result.run_a}\nB: {result.run_b}"))
        for column in ("fold", "A", "B", "B - A"):
            table.add_column(column, justify="right")
        for fold, a, b, d in zip(result.folds, result.a, result.b, result.differences,
                                 strict=True):
            table.add_row(fold, f"{a:.4f}", f"{b:.4f}", f"{d:+.4f}")
        table.add_section()
        table.add_row("mean", f"{result.mean_a:.4f}", f"{result.mean_b:.4f}",
                      f"{result.mean_difference:+.4f}")
        table.add_row("95% CI", "", "",
                      f"{result.ci95[0]:+.4f} .. {result.ci95[1]:+.4f}")
        out.print(table)
        out.print(result.statement, markup=False)

    _guard(action, json_)


@app.command()
def schema() -> None:
    """Print the config's JSON schema (for editors: see the README's Editors section)."""

    def action() -> None:
        from kerastrain.schema_export import config_json_schema

        sys.stdout.write(json.dumps(config_json_schema(), indent=2) + "\n")

    _guard(action)


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

    _guard(action)


def main() -> None:
    app()

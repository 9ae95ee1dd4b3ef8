"""Commands that read runs back without TensorFlow: runs (list, show, compare) and the
paired comparison of two cross-validation runs."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from kerastrain.cli.app import (
    Commands,
    JsonOption,
    PathsCommand,
    app,
    err,
    guard,
    out,
    print_json,
)
from kerastrain.cli.render import metrics_table, show


class _RunsGroup(Commands):
    """`kerastrain runs [RUNS_DIR] [options]` lists runs (the `list` subcommand) unless the
    first word names a subcommand: `runs show RUN`, `runs compare RUN RUN...`."""

    order = ("list", "show", "compare")

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


runs_app = typer.Typer(
    cls=_RunsGroup, rich_markup_mode=None,
    help="List runs, show one, or compare several.\n\nkerastrain runs [RUNS_DIR] [options] "
         "is runs list; runs show RUN shows one; runs compare RUN RUN... compares them.")
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
                                   "completed, pruned, failed, interrupted, "
                                   "unreadable.")] = None,
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
    """List runs with their status and final metrics.

    Imports no TensorFlow: fast over many runs."""

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
            print_json({"runs": found, **({"sort": order} if order else {})})
        elif csv_:
            sys.stdout.write(runs.to_csv(found))
        else:
            where = sweep if sweep is not None else runs_dir or Path("runs")
            show(out, _runs_table(f"{where}: {len(found)} runs", found))

    guard(action, json_)


def _runs_table(title: str, found: list[dict[str, Any]]) -> Table:
    """The run name (the handle every command takes; it holds when the run started) and
    its status on one line; the metrics one per line."""
    table = Table(title=title)
    names = [Path(run["run_dir"]).name for run in found]
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("validation", "test"):
        table.add_column(column)
    for name, run in zip(names, found, strict=True):
        shown = ["\n".join(f"{k}={v:.4g}" for k, v in run["metrics"].get(split, {}).items()
                           if isinstance(v, (int, float)))
                 for split in ("validation", "test")]
        table.add_row(Text(name), str(run["status"]), *map(Text, shown))
    return table


@runs_app.command("show")
def runs_show(run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
              json_: JsonOption = False) -> None:
    """Show one run: its status, config, metrics and files."""

    def action() -> None:
        from kerastrain.runview import show_run

        shown = show_run(run_dir)
        if json_:
            print_json(shown)
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
        show(out, head)
        if "cv_summary" in shown and shown["cv_summary"].get("metrics"):
            from kerastrain.training.report import cv_table

            show(out, cv_table(shown["cv_summary"]))
        if shown["metrics"]:
            show(out, metrics_table("final metrics", shown["metrics"]))
        for problem in shown["problems"]:
            out.print(f"unreadable: {problem}", markup=False)
        files = Table(title="files", show_header=False)
        for file_name, path in shown["files"].items():
            files.add_row(Text(file_name), Text(path))
        show(out, files)

    guard(action, json_)


@runs_app.command("compare", cls=PathsCommand)
def runs_compare(run_dirs: Annotated[list[Path], typer.Argument(
                     metavar="RUN", help="Two or more run directories.")],
                 json_: JsonOption = False) -> None:
    """Compare runs: the config keys that differ, and the metrics.

    Keys as dotted paths; the metrics side by side."""

    def action() -> None:
        from kerastrain.runview import compare_configs

        result = compare_configs(run_dirs)
        if json_:
            print_json(result)
            return
        caption = Text("\n".join(
            f"{i}: {run}" + (f"  unreadable ({'; '.join(problems)})" if status == "unreadable"
                             else "")
            for i, (run, status, problems) in enumerate(zip(
                result["runs"], result["status"], result["problems"], strict=True), 1)))
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
            show(out, table)

    guard(action, json_)


@runs_app.command("export")
def runs_export(
        runs_dir: Annotated[Path | None, typer.Argument(
            metavar="RUNS_DIR", help="Where the runs are (default: runs).",
            show_default=False)] = None,
        mlflow: Annotated[str, typer.Option(
            metavar="URI", help="The MLflow tracking store to log the runs to (pip install "
                                "'kerastrain[mlflow]').")] = "sqlite:///mlflow.db",
        experiment: Annotated[str, typer.Option(
            help="The MLflow experiment the runs go in.")] = "kerastrain",
        sweep: Annotated[Path | None, typer.Option(
            help="Only the runs a sweep directory's manifest.csv lists.")] = None,
        json_: JsonOption = False) -> None:
    """Log runs to an MLflow tracking store, for `mlflow ui`.

    Each run's config as params, its per-epoch and final metrics, tags, and the run
    directory's files as artifacts; `mlflow ui --backend-store-uri URI` shows them. Runs
    exported before are skipped."""

    def action() -> None:
        from kerastrain import runs
        from kerastrain.tracking import export_mlflow

        if sweep is not None and runs_dir is not None:
            raise runs.RunsError("give either RUNS_DIR or --sweep DIR, not both.")
        found = runs.sweep_runs(sweep) if sweep is not None else \
            runs.find_runs(runs_dir or Path("runs"))
        done = export_mlflow([r for r in found if r["status"] not in ("missing",
                                                                         "unreadable")],
                             mlflow, experiment)
        if json_:
            print_json({"mlflow": mlflow, "experiment": experiment, "runs": done})
            return
        new = sum(d["new"] for d in done)
        out.print(f"{new} runs logged to {mlflow} (experiment {experiment}); "
                  f"{len(done) - new} were there already.", markup=False)

    guard(action, json_)


class Direction(str, Enum):
    auto = "auto"
    lower = "lower"
    higher = "higher"


@app.command()
def compare(run_a: Annotated[Path, typer.Argument(
                metavar="RUN_A", help="A cross-validation run (A).")],
            run_b: Annotated[Path, typer.Argument(
                metavar="RUN_B", help="A run on the same folds (B).")],
            metric: Annotated[str, typer.Option(
                help="The per-fold metric to compare (as in cv_summary.json).")] = "loss",
            direction: Annotated[Direction, typer.Option(
                help="Whether lower or higher is better; auto: from the metric's name.")]
            = Direction.auto,
            json_: JsonOption = False) -> None:
    """Compare two cross-validation runs fold by fold (a paired test).

    A paired comparison on identical folds: per-fold differences B - A and the corrected
    resampled t-test (docs/compare.md)."""

    def action() -> None:
        from kerastrain.compare import compare_runs

        result = compare_runs(run_a, run_b, metric,
                              None if direction is Direction.auto else direction.value)
        if json_:
            print_json(result.to_json())
            return
        table = Table(title=f"{metric} per fold",
                      caption=Text(f"A: {result.run_a}\nB: {result.run_b}"))
        for column in ("fold", "A", "B", "B - A"):
            table.add_column(column, justify="right")
        n = result.decimals  # one format for every number of the table and the statement
        for fold, a, b, d in zip(result.folds, result.a, result.b, result.differences,
                                 strict=True):
            table.add_row(fold, f"{a:.{n}f}", f"{b:.{n}f}", f"{d:+.{n}f}")
        table.add_section()
        table.add_row("mean", f"{result.mean_a:.{n}f}", f"{result.mean_b:.{n}f}",
                      f"{result.mean_difference:+.{n}f}")
        table.add_row("95% CI", "", "",
                      f"{result.ci95[0]:+.{n}f} .. {result.ci95[1]:+.{n}f}")
        show(out, table)
        out.print(result.statement, markup=False)

    guard(action, json_)

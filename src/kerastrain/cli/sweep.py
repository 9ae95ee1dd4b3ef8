"""`kerastrain sweep CONFIG`: many runs of one config, a grid or random draws of `--set`
values, side by side, in a sweep directory that a rerun of the same command picks up."""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from kerastrain.cli.app import (
    JsonOption,
    QuietOption,
    SetOption,
    app,
    err,
    guard,
    out,
    print_json,
)
from kerastrain.cli.render import show
from kerastrain.errors import UserError


class Executor(str, Enum):
    local = "local"
    ray = "ray"


class Search(str, Enum):
    grid = "grid"
    random = "random"
    tpe = "tpe"


class Prune(str, Enum):
    none = "none"
    median = "median"
    hyperband = "hyperband"


@app.command()
def sweep(
        config: Annotated[Path, typer.Argument(
            metavar="CONFIG", help="The experiment's YAML file.")],
        grid: Annotated[list[str] | None, typer.Option(
            "--grid", metavar="KEY=V1,V2,...",
            help="Values to try for a config field (repeatable: every combination).")] = None,
        random: Annotated[int, typer.Option(
            "--random", metavar="N", help="Draw N trials from the --param distributions.")]
        = 0,
        param: Annotated[list[str] | None, typer.Option(
            "--param", metavar="KEY=DIST",
            help="A distribution to draw a field from (repeatable): uniform:LOW,HIGH, "
                 "loguniform:LOW,HIGH, int:LOW,HIGH or choice:A,B,C.")] = None,
        search: Annotated[Search | None, typer.Option(
            help="tpe or random: an Optuna study of --trials N trials over the --param "
                 "space (pip install 'kerastrain[search]'); grid: the --grid "
                 "combinations.")] = None,
        trials: Annotated[int, typer.Option(
            "--trials", metavar="N", help="How many trials --search tpe|random runs.")] = 0,
        prune: Annotated[Prune, typer.Option(
            help="Stop unpromising trials early, from the validation metric after each "
                 "epoch (--search tpe|random).")] = Prune.none,
        min_epochs: Annotated[int | None, typer.Option(
            "--min-epochs", metavar="K",
            help="The first epoch a trial can be pruned at (hyperband: its first rung, "
                 "default epochs // F^2; median: default epochs // 5).")] = None,
        reduction_factor: Annotated[int | None, typer.Option(
            "--reduction-factor", metavar="F",
            help="Hyperband keeps 1 in F trials at each rung (default 4).")] = None,
        startup_trials: Annotated[int | None, typer.Option(
            "--startup-trials", metavar="N",
            help="Random trials before TPE models the scores (default trials // 3, from 2 "
                 "to 10).")] = None,
        budget: Annotated[int | None, typer.Option(
            "--budget", metavar="EPOCHS",
            help="Stop the search when its trials have trained this many epochs in all "
                 "(the trial running then is pruned).")] = None,
        storage: Annotated[str | None, typer.Option(
            help="The study's database URL, shared by every process on it (default: "
                 "sqlite:///<sweep dir>/study.db).")] = None,
        seed: Annotated[int | None, typer.Option(
            help="Seed of the random draw or search (default: drawn once, kept in "
                 "sweep.json).")] = None,
        set_: SetOption = None,
        jobs: Annotated[int, typer.Option(
            "--jobs", "-j", help="Trials run side by side (they share the cores).")] = 1,
        fail_fast: Annotated[bool, typer.Option(
            "--fail-fast", help="Stop at the first failed trial (default: run the others).")]
        = False,
        metric: Annotated[str, typer.Option(
            help="Rank trials by this metric: val_loss, validation.accuracy, test.loss... "
                 "(cross-validation runs: the fold mean, with its 95% interval).")]
        = "val_loss",
        sweep_dir: Annotated[Path | None, typer.Option(
            help="Where sweep.json and manifest.csv go (default: <runs_dir>/sweeps/"
                 "<name>-<id of the sweep's definition>).")] = None,
        executor: Annotated[Executor, typer.Option(
            help="local: worker processes here; ray: Ray tasks (pip install "
                 "'kerastrain[ray]').")] = Executor.local,
        address: Annotated[str | None, typer.Option(
            help="The Ray cluster to use (default: a Ray started for the sweep).")] = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Check every trial's config and list the trials; train "
                              "nothing.")] = False,
        quiet: QuietOption = False, json_: JsonOption = False) -> None:
    """Train one run per trial: a grid, random draws, or a search.

    The trials come from a grid (--grid), random draws (--random N --param), or a search
    that learns (--search tpe --trials N --param, optionally --prune). Every trial's
    config is checked first. Running the same command again skips the completed trials
    and resumes the failed or interrupted ones. Exit code: 0 when every trial completed
    (or was pruned), 1 when some failed, 2 for a mistake in the arguments or a trial's
    config (nothing trained), 130 interrupted. See docs/sweeps.md."""

    def action() -> None:
        if search is not None and search != Search.grid:
            from kerastrain.cli.search import run_search

            run_search(config, set_ or [], param or [], search.value, trials, seed, metric,
                       sweep_dir, storage, prune.value, jobs, bool(grid) or bool(random),
                       executor, address, dry_run, quiet, json_, _render_result,
                       (min_epochs, reduction_factor, startup_trials), budget)
            return
        if trials or storage or prune != Prune.none or any(
                v is not None for v in (min_epochs, reduction_factor, startup_trials, budget)):
            raise UserError("--trials, --storage, --prune, --min-epochs, --reduction-factor, "
                            "--startup-trials and --budget are for --search tpe|random.")
        from kerastrain.sweep.run import execute, plan

        planned = plan(config, set_ or [], grid or [], random, param or [], seed, metric,
                       sweep_dir, executor.value, address, jobs, sys.argv)
        if dry_run:
            _render_plan(planned, quiet, json_)
            return
        from kerastrain.cli.search import trials_shown

        with trials_shown(planned.dir.path, quiet, json_, len(planned.rows),
                          "resume the sweep: completed trials are skipped, interrupted "
                          "ones resumed") as display:
            for row in execute(planned, jobs, fail_fast, executor.value, address, display):
                if display is not None:
                    display.trial_end(_ended(row))
        failed = [r for r in planned.rows if r.status not in ("completed", "pruned")]
        _render_result(planned, quiet, json_)
        if failed:
            if not json_:
                err.print(f"{len(failed)} of {len(planned.rows)} trials did not complete; "
                          "run the same command again to retry them.", markup=False)
            raise typer.Exit(1)

    guard(action, json_)


def _ended(row: Any) -> str:
    text = f"{row.trial} {row.status}"
    if row.action == "skipped":
        text += " (completed before: skipped)"
    elif row.action == "resumed":
        text += " (resumed)"
    if row.value is not None:
        text += f": {row.value:.4g}"
    if row.error:
        text += f": {row.error.splitlines()[0]}"
    return text


def _short(keys: list[str]) -> list[str]:
    """Column names for override keys: the shortest dotted suffix that tells them apart
    (`learning_rate` for compile.optimizer.learning_rate)."""
    names = []
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[-n:])
            if sum(k == name or k.endswith("." + name) for k in keys) == 1:
                break
        names.append(name)
    return names


def _render_plan(planned: Any, quiet: bool, json_: bool) -> None:
    if json_:
        print_json({"sweep_dir": str(planned.dir.path), "seed": planned.record["seed"],
                    "trials": [{"trial": r.trial, "overrides": r.overrides, "status": r.status,
                                "run_dir": r.run_dir or None} for r in planned.rows]})
        return
    if quiet:
        for row in planned.rows:
            sys.stdout.write(" ".join(f"--set {shlex.quote(f'{k}={v}')}"
                                      for k, v in row.overrides.items()) + "\n")
        return
    keys = list(dict.fromkeys(k for r in planned.rows for k in r.overrides))
    seed = planned.record["seed"]
    table = Table(title=f"{len(planned.rows)} trials{'' if seed is None else f' (seed {seed})'}"
                        f": {planned.dir.path}")
    for column in ("trial", *_short(keys), "status"):
        table.add_column(column)
    for row in planned.rows:
        table.add_row(row.trial, *[Text(row.overrides.get(k, "")) for k in keys], row.status)
    show(out, table)


def _pruned_at(run_dir: str) -> str:
    from kerastrain.rundir import RunDir

    try:
        return f" at epoch {RunDir(Path(run_dir)).info()['pruned']['epoch']}"
    except Exception:  # a run.json that lacks it: the status alone
        return ""


def _render_result(planned: Any, quiet: bool, json_: bool) -> None:
    from kerastrain.sweep.run import rank
    from kerastrain.sweep.verdict import winner

    ranked, direction = rank(planned.rows, planned.metric)
    best = winner(ranked, planned.metric)
    importances = planned.record.get("importances") or {}
    if json_:
        print_json({"sweep_dir": str(planned.dir.path), "metric": planned.metric,
                    "direction": direction, "trials": [r.to_json() for r in ranked],
                    "completed": sum(r.status == "completed" for r in ranked),
                    "pruned": sum(r.status == "pruned" for r in ranked),
                    "failed": sum(r.status not in ("completed", "pruned") for r in ranked),
                    "winner": best, "importances": importances})
        return
    if quiet:
        sys.stdout.write(f"{planned.dir.path}\n")
        return
    keys = list(dict.fromkeys(k for r in ranked for k in r.overrides))
    table = Table(title=f"{planned.dir.path.name}: {len(ranked)} trials, best first by "
                        f"{planned.metric} ({direction} is better)")
    for column in ("trial", *_short(keys)):
        table.add_column(column)
    table.add_column(planned.metric, justify="right")
    for column in ("status", "run directory"):
        table.add_column(column)
    for row in ranked:
        value = "" if row.value is None else f"{row.value:.4f}"
        if row.ci95:
            value += f" [{row.ci95[0]:.4f}, {row.ci95[1]:.4f}]"
        status = row.status + {"skipped": " (skipped)", "resumed": " (resumed)"}.get(
            row.action, "")
        if row.status == "pruned" and row.run_dir:
            status += _pruned_at(row.run_dir)
        where = Path(row.run_dir).name if row.run_dir else ""
        if row.error:
            where = row.error.splitlines()[0]
        table.add_row(row.trial, *[Text(row.overrides.get(k, "")) for k in keys], value,
                      status, Text(where))
    show(out, table)
    if best and best.get("statement"):
        out.print(best["statement"], markup=False)
    if importances:
        out.print("parameter importances (Optuna, fANOVA): " + ", ".join(
            f"{k} {v:.2f}" for k, v in importances.items()), markup=False)
    out.print(f"manifest: {planned.dir.manifest} (kerastrain runs --sweep "
              f"{shlex.quote(str(planned.dir.path))})", markup=False)

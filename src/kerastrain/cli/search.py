"""`kerastrain sweep --search tpe|random`: the command line of a search (`sweep.py` parses
the options and hands them here)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from kerastrain.cli.app import err, out, print_json
from kerastrain.errors import UserError


def run_search(config: Path, fixed: list[str], params: list[str], search: str, trials: int,
               seed: int | None, metric: str, sweep_dir: Path | None, storage: str | None,
               prune: str, jobs: int, gridded: bool, executor: Any, address: str | None,
               dry_run: bool, quiet: bool, json_: bool,
               render: Callable[[Any, bool, bool], None],
               tuning: tuple[int | None, ...] = (None, None, None),
               budget: int | None = None) -> None:
    """Check, run and report a search (`render`: the sweep's final table; `tuning`:
    --min-epochs, --reduction-factor, --startup-trials); exit 1 when a trial failed, 130
    interrupted."""
    if gridded:
        raise UserError(f"--search {search} draws from --param; --grid and --random are for "
                        "--search grid (the default) and the plain random draw.")
    if importlib.util.find_spec("optuna") is None:
        raise UserError(f"--search {search} needs Optuna: pip install 'kerastrain[search]'")
    from kerastrain.sweep.search import execute_search, plan_search

    planned = plan_search(config, fixed, params, search, trials, seed, metric, sweep_dir,
                          storage, prune, jobs, sys.argv, executor.value, address, *tuning,
                          budget=budget)
    if dry_run:
        if json_:
            print_json({"sweep_dir": str(planned.dir.path), "study": planned.spec.study,
                        "storage": planned.spec.storage, "seed": planned.record["seed"],
                        "tuning": planned.record["tuning"]})
        else:
            out.print(f"{search} search, {trials} trials over {', '.join(params)}: the "
                      f"config checked at every bound; study {planned.spec.study} in "
                      f"{planned.spec.storage}", markup=False)
        return
    with trials_shown(planned.dir.path, quiet, json_, trials,
                      "continue the search: its finished trials are kept in the study, "
                      "interrupted ones resumed") as display:
        execute_search(planned, display)
    render(planned, quiet, json_)
    elsewhere = sum(r.status in ("running", "pending") for r in planned.rows)
    if elsewhere and not json_:
        err.print(f"{elsewhere} trials are still running in other processes on this study.",
                  markup=False)
    failed = [r for r in planned.rows if r.status in ("failed", "interrupted")]
    if failed:
        if not json_:
            err.print(f"{len(failed)} of {len(planned.rows)} trials did not complete; run "
                      "the same command again to retry them.", markup=False)
        raise typer.Exit(1)


@contextmanager
def trials_shown(sweep_dir: Path, quiet: bool, json_: bool, total: int,
                 again: str) -> Iterator[Any]:
    """The live display of a sweep's trials (None under --quiet or --json), stopped when
    they end; Ctrl-C said (`again`: what running the same command again does), as one
    JSON object under --json, and exit 130."""
    display = None
    if not quiet and not json_:
        from kerastrain.cli.render import SweepProgress

        display = SweepProgress(err)
        err.print(f"sweep directory: {sweep_dir}", markup=False)
        display.start(total)
    try:
        yield display
    except KeyboardInterrupt:
        if display is not None:
            display.stop()
        message = f"interrupted. Run the same command again to {again}."
        err.print(message, markup=False)
        if json_:
            print_json({"status": "interrupted", "exit_code": 130, "error": message,
                        "sweep_dir": str(sweep_dir)})
        raise typer.Exit(130) from None
    if display is not None:
        display.stop()

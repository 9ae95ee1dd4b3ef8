"""Reading many run directories back: list, filter, sort, show one, compare several.

Listing reads only each run's `run.json` and `metrics.json` (never a model, never
TensorFlow), so `kerastrain runs` stays fast over hundreds of runs. A half-written or
damaged run is listed as `unreadable` rather than stopping the listing; directories
that are no run at all (no run.json, no config.yaml) and stray files are skipped.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from kerastrain.compare import metric_direction
from kerastrain.errors import RunDirError, UserError, did_you_mean
from kerastrain.rundir import MANIFEST_FILE, RunDir, read_json
from kerastrain.yamlnum import scalar

STATUSES = ("running", "completed", "pruned", "failed", "interrupted", "unreadable", "missing")
_RUN_NAME = re.compile(r"^(?P<name>.+)-\d{8}-\d{6}-[0-9a-f]+$")
_SPLITS = ("validation", "test")


class RunsError(UserError):
    """A filter, a sort key or a sweep manifest that cannot be used."""


def run_name(path: Path) -> str:
    """The config's `name` of a run, read from its directory name `<name>-<time>-<id>`."""
    match = _RUN_NAME.match(path.name)
    return match.group("name") if match else path.name


def overrides_of(info: dict[str, Any]) -> dict[str, Any]:
    """The `--set` overrides a run was made with: run.json's `overrides` where recorded,
    else those on its command line. Values are parsed as YAML scalars, as `--set` does."""
    recorded = info.get("overrides")
    if isinstance(recorded, dict):
        return dict(recorded)
    texts = recorded if isinstance(recorded, list) else []
    if not texts:
        command = info.get("command") or []
        for i, arg in enumerate(command):
            if arg == "--set" and i + 1 < len(command):
                texts.append(command[i + 1])
            elif isinstance(arg, str) and arg.startswith("--set="):
                texts.append(arg[len("--set="):])
    found: dict[str, Any] = {}
    for text in texts:
        key, sep, value = str(text).partition("=")
        if sep:
            try:
                found[key.strip()] = scalar(value)
            except yaml.YAMLError:
                found[key.strip()] = value
    return found


def read_run(path: str | Path) -> dict[str, Any]:
    """One run's listing entry: run_dir, name, status, started_at, metrics, overrides, and
    `problems` (files that could not be read). Never raises for a damaged run."""
    path = Path(path)
    entry: dict[str, Any] = {"run_dir": str(path), "name": run_name(path), "status": None,
                             "started_at": None, "metrics": {}, "overrides": {},
                             "problems": []}
    if not path.is_dir():
        entry.update(status="missing", problems=[f"{path}: no such run directory"])
        return entry
    run = RunDir(path)
    try:
        info = read_json(run.info_file)
    except RunDirError as exc:
        entry.update(status="unreadable", problems=[str(exc)])
        return entry
    if not isinstance(info, dict):
        entry.update(status="unreadable", problems=[f"{run.info_file}: not a JSON object"])
        return entry
    entry.update(status=info.get("status"), started_at=info.get("started_at"),
                 overrides=overrides_of(info))
    if run.metrics.exists():
        try:
            metrics = read_json(run.metrics)
            entry["metrics"] = metrics if isinstance(metrics, dict) else {}
        except RunDirError as exc:
            entry["problems"].append(str(exc))
    return entry


def find_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run under `runs_dir`, newest first. A directory counts as a run when it holds
    run.json, or config.yaml under a run directory's name (a run still being created);
    anything else (stray files, sweep folders) is skipped."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise RunDirError(f"{runs_dir}: is a file, not a runs directory; give the folder "
                          "that holds the runs (default: runs).")
    if not runs_dir.is_dir():
        raise RunDirError(f"{runs_dir}: no such runs directory.")
    found = []
    for path in runs_dir.iterdir():
        try:
            run = RunDir(path)
            starting = _RUN_NAME.match(path.name) and run.config.exists()
            if not path.is_dir() or not (run.info_file.exists() or starting):
                continue
        except OSError:
            continue
        found.append(read_run(path))
    return _newest_first(found)


def _newest_first(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runs.sort(key=lambda r: r["run_dir"], reverse=True)
    runs.sort(key=lambda r: str(r["started_at"] or ""), reverse=True)
    return runs


def sweep_runs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The runs a sweep's `manifest.csv` lists (column `run_dir`), in its order. Relative
    paths are taken from the working directory, else from the sweep directory."""
    sweep_dir = Path(sweep_dir)
    manifest = sweep_dir / MANIFEST_FILE
    if not manifest.is_file():
        raise RunsError(f"{sweep_dir}: not a sweep directory (no manifest.csv).")
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if "run_dir" not in (reader.fieldnames or []):
            raise RunsError(f"{manifest}: has no run_dir column (columns: "
                            f"{', '.join(reader.fieldnames or [])}).")
        listed = [row["run_dir"] for row in reader if row.get("run_dir")]
    paths = []
    for text in dict.fromkeys(listed):
        path = Path(text)
        if not path.is_absolute() and not path.exists():
            path = sweep_dir / path
        paths.append(path)
    return [read_run(p) for p in paths]


def filter_runs(runs: Iterable[dict[str, Any]], name: str | None = None,
                statuses: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Runs whose name (or directory name) matches `name` (a glob when it holds * ? or [,
    else a substring, ignoring case) and whose status is one of `statuses`."""
    wanted = list(statuses)
    for status in wanted:
        if status not in STATUSES:
            raise RunsError(f"--status {status!r} is not a run status."
                            f"{did_you_mean(status, STATUSES)} Statuses: "
                            f"{', '.join(STATUSES)}.")
    kept = []
    for run in runs:
        if wanted and run["status"] not in wanted:
            continue
        if name is not None and not _name_matches(name, run):
            continue
        kept.append(run)
    return kept


def _name_matches(pattern: str, run: dict[str, Any]) -> bool:
    names = (run["name"].lower(), Path(run["run_dir"]).name.lower())
    pattern = pattern.lower()
    if any(c in pattern for c in "*?["):
        return any(fnmatch.fnmatchcase(n, pattern) for n in names)
    return any(pattern in n for n in names)


def metric_key(text: str) -> tuple[str, str]:
    """`val_loss` or `validation.loss` -> ('validation', 'loss'); `test.accuracy` ->
    ('test', 'accuracy'); a bare name means the validation split."""
    split, dot, name = text.partition(".")
    if dot and split in _SPLITS:
        return split, name
    if text.startswith("val_"):
        return "validation", text[len("val_"):]
    if text.startswith("test_"):
        return "test", text[len("test_"):]
    return "validation", text


def unknown_metric(option: str, metric: str, who: str, available: list[str]) -> str:
    """Why `metric` cannot rank runs: `who` ("no run has") lacks it; the closest of the
    `available` `<split>.<name>` metrics and all of them."""
    wanted = ".".join(metric_key(metric))
    return (f"{option} {metric!r}: {who} the metric {wanted}."
            f"{did_you_mean(wanted, available)} Metrics: {', '.join(available) or 'none'}.")


def metric_value(run: dict[str, Any], key: tuple[str, str]) -> float | None:
    value = run["metrics"].get(key[0], {})
    value = value.get(key[1]) if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """`{validation: {loss: ..}}` -> `{validation.loss: ..}`."""
    return {f"{split}.{name}": value for split, scores in metrics.items()
            if isinstance(scores, dict) for name, value in scores.items()}


def sort_runs(runs: list[dict[str, Any]], metric: str) -> tuple[list[dict[str, Any]],
                                                                  dict[str, Any]]:
    """Runs best first by `metric`; runs without it last. Also returns how they were
    sorted: the metric key, the direction and whether it was recognised."""
    key = metric_key(metric)
    if runs and all(metric_value(r, key) is None for r in runs):
        available = sorted({k for r in runs for k in flat_metrics(r["metrics"])})
        raise RunsError(unknown_metric("--sort", metric, "no run has", available))
    direction, known = metric_direction(key[1])
    sign = 1.0 if direction == "lower" else -1.0
    with_value = [r for r in runs if metric_value(r, key) is not None]
    without = [r for r in runs if metric_value(r, key) is None]
    with_value.sort(key=lambda r: sign * metric_value(r, key))  # type: ignore[operator]
    order = {"metric": ".".join(key), "direction": direction, "recognised": known,
             "order": f"best first ({direction} is better"
                      + ("" if known else ", assumed: an unknown metric") + ")"}
    return with_value + without, order


def to_csv(runs: list[dict[str, Any]]) -> str:
    """One row per run: run_dir, name, status, started_at, every metric as
    `<split>.<metric>`, and every override as `set:<key>`."""
    metric_cols = sorted({k for r in runs for k in flat_metrics(r["metrics"])})
    set_cols = list(dict.fromkeys(k for r in runs for k in r["overrides"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run_dir", "name", "status", "started_at", *metric_cols,
                     *[f"set:{k}" for k in set_cols]])
    for run in runs:
        flat = flat_metrics(run["metrics"])
        writer.writerow([run["run_dir"], run["name"], run["status"] or "",
                         run["started_at"] or "", *[flat.get(k, "") for k in metric_cols],
                         *[run["overrides"].get(k, "") for k in set_cols]])
    return buffer.getvalue()

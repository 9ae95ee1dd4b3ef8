"""The sweep directory: `sweep.json` (what was swept: the command, the config, the axes and
params, the seed, the trials) and `manifest.csv` (one row per trial: its status, the
chosen metric, its run directory and its `--set` values), rewritten atomically whenever a
trial ends, so that a killed sweep leaves a readable manifest behind.

A sweep's default directory is `<runs_dir>/sweeps/<name>-<id>`, where the id hashes the
sweep's definition (the config file's path and contents, --set, --grid, --random, --param
and --seed): the same command finds the same directory, and so the trials it already ran."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastrain.config.schema import Config
from kerastrain.rundir import (
    MANIFEST_FILE,
    SWEEP_FILE,
    RunDir,
    now,
    read_json,
    write_json,
    write_text,
)
from kerastrain.runs import metric_key, unknown_metric
from kerastrain.sweep.space import SweepError

STATUSES = ("pending", "running", "completed", "pruned", "failed", "interrupted")
_COLUMNS = ("trial", "status", "action", "{metric}", "ci95_low", "ci95_high", "run_dir",
            "error")


@dataclass
class Row:
    """One trial as the manifest holds it. `action` says what this sweep command did with
    it: trained, resumed (a failed or interrupted run continued in its own directory) or
    skipped (completed before)."""

    trial: str
    overrides: dict[str, str]
    status: str = "pending"
    action: str = ""
    run_dir: str = ""
    value: float | None = None
    ci95: list[float] | None = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial, "overrides": self.overrides, "status": self.status,
                "action": self.action, "run_dir": self.run_dir or None, "metric": self.value,
                "ci95": self.ci95, "error": self.error or None}


def definition_id(definition: dict[str, Any]) -> str:
    text = json.dumps(definition, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class SweepDir:
    path: Path

    @property
    def definition_file(self) -> Path:
        return self.path / SWEEP_FILE

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST_FILE

    def recorded(self) -> dict[str, Any] | None:
        return read_json(self.definition_file) if self.definition_file.is_file() else None

    def write_definition(self, data: dict[str, Any]) -> None:
        earlier = self.recorded() or {}
        write_json(self.definition_file, {**data, "created_at": earlier.get("created_at",
                                                                            now()),
                                          "updated_at": now()})

    def read_rows(self) -> dict[str, Row]:
        """The manifest's rows by trial id (none before the sweep's first run)."""
        if not self.manifest.is_file():
            return {}
        with open(self.manifest, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = {}
            for r in reader:
                overrides = {k[len("set:"):]: v for k, v in r.items()
                             if k and k.startswith("set:") and v is not None}
                rows[r["trial"]] = Row(r["trial"], overrides, r.get("status") or "pending",
                                       r.get("action") or "", r.get("run_dir") or "",
                                       error=r.get("error") or "")
        return rows

    def write_rows(self, rows: list[Row], metric: str) -> None:
        """manifest.csv: trial, status, action, the metric (its 95% interval for
        cross-validation runs), run_dir, error, then one `set:<key>` column per swept key."""
        keys = list(dict.fromkeys(k for r in rows for k in r.overrides))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.format(metric=metric) for c in _COLUMNS]
                        + [f"set:{k}" for k in keys])
        for r in rows:
            low, high = r.ci95 or ("", "")
            writer.writerow([r.trial, r.status, r.action, "" if r.value is None else r.value,
                             low, high, r.run_dir, r.error,
                             *[r.overrides.get(k, "") for k in keys]])
        write_text(self.manifest, buffer.getvalue())


def run_status(run_dir: str | Path) -> str | None:
    """A run's status from its run.json (None: no run there, or unreadable)."""
    info_file = RunDir(Path(run_dir)).info_file
    try:
        return read_json(info_file).get("status") if run_dir and info_file.is_file() else None
    except Exception:  # a damaged run.json: as if there were no run
        return None


def trial_metric(run_dir: str | Path, metric: str) -> tuple[float | None, list[float] | None]:
    """A run's value of `metric` (`val_loss`, `validation.accuracy`, `test.loss`) from
    metrics.json; for a cross-validation run's validation metric, the fold mean and its 95%
    interval from cv_summary.json."""
    run = RunDir(Path(run_dir))
    split, name = metric_key(metric)
    try:
        metrics = read_json(run.metrics) if run.metrics.is_file() else {}
        cv = read_json(run.cv_summary) if run.cv_summary.is_file() else None
    except Exception:  # a damaged run shows without its metric
        return None, None
    value = metrics.get(split, {}).get(name) if isinstance(metrics.get(split), dict) else None
    interval = None
    if cv and split == "validation" and name in cv.get("metrics", {}):
        entry = cv["metrics"][name]
        value, interval = entry.get("mean", value), entry.get("ci95")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, None
    return float(value), interval


def _keras_name(spec: Any) -> str:
    """The name Keras logs for a metric's spec: a name as written (Keras is given the
    name); an object with arguments by its `name` argument, else by its class name in
    snake case (`{type: AUC, curve: PR}` -> `auc`)."""
    if isinstance(spec, str) or not spec.args:
        return spec if isinstance(spec, str) else spec.type
    if "name" in spec.args:
        return str(spec.args["name"])
    snake = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", spec.type))
    return re.sub("([a-z])([A-Z])", r"\1_\2", snake).lower()


def logged_metrics(cfg: Config) -> list[str]:
    """`<split>.<name>` of every metric a run of `cfg` logs, read from the config without
    Keras: `loss`, its metrics and weighted metrics (`weighted_` + name), per split."""
    names = {"loss"}
    for key, prefix in (("metrics", ""), ("weighted_metrics", "weighted_")):
        specs = getattr(cfg.compile, key)
        for group in specs.values() if isinstance(specs, dict) else [specs]:
            names |= {prefix + _keras_name(spec) for spec in group}
    splits = ["validation"] + (["test"] if cfg.validation.test_split > 0 else [])
    return [f"{split}.{n}" for split in splits for n in sorted(names)]


def check_metric(metric: str, configs: list[Config]) -> None:
    """A sweep ranks its trials by `metric`: refuse one that no trial's config logs. Names
    are compared ignoring case and underscores (Keras's own names of a few classes differ
    from their snake case), and a graph model's outputs prefix theirs (`out_loss`). A
    config with plugins is not checked: their metrics name themselves."""
    if any(cfg.plugins for cfg in configs):
        return
    split, name = metric_key(metric)
    logged = sorted({m for cfg in configs for m in logged_metrics(cfg)})
    plain = {_plain(m.partition(".")[2]) for m in logged if m.startswith(split + ".")}
    tails = {_plain(name.split("_", i)[-1]) for i in range(name.count("_") + 1)}
    if not tails & plain:
        raise SweepError(unknown_metric("--metric", metric, "no run of this config logs",
                                        logged))


def _plain(name: str) -> str:
    return name.lower().replace("_", "")


def tagged_runs(runs_dir: Path, sweep_dir: Path) -> dict[str, Path]:
    """The run directories under `runs_dir` that this sweep started (run.json's `sweep`),
    newest per trial: how a rerun finds a trial's run when its sweep was killed before the
    manifest could name it."""
    found: dict[str, tuple[str, Path]] = {}
    if not runs_dir.is_dir():
        return {}
    for path in runs_dir.iterdir():
        info_file = RunDir(path).info_file
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        tag = info.get("sweep") if isinstance(info, dict) else None
        if not isinstance(tag, dict) or tag.get("dir") != str(sweep_dir):
            continue
        started = str(info.get("started_at") or "")
        trial = str(tag.get("trial"))
        if trial not in found or started >= found[trial][0]:
            found[trial] = (started, path)
    return {trial: path for trial, (_, path) in found.items()}

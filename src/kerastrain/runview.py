"""One run shown (status, a summary of its config, its metrics, where its files are) and
several compared (the config keys that differ, the metrics side by side). No TensorFlow."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from kerastrain.errors import RunDirError
from kerastrain.rundir import RunDir, read_json
from kerastrain.runs import RunsError, flat_metrics, read_run

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_config(path: Path) -> dict[str, Any]:
    """A run's config.yaml as plain data."""
    config = RunDir(path).config
    try:
        data = yaml.load(config.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise RunDirError(f"{config}: unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{config}: not a kerastrain config.")
    return data


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config data as `{dotted.path: value}`, list items by index (as `--set`)."""
    if isinstance(data, dict) and data:
        items = data.items()
    elif isinstance(data, list) and data:
        items = enumerate(data)
    else:
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _open(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: is a file, not a run directory.")
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory.")
    if not RunDir(path).info_file.exists() and not RunDir(path).config.exists():
        raise RunDirError(f"{path}: not a kerastrain run directory (no run.json).")
    return path


def show_run(path: str | Path) -> dict[str, Any]:
    """Everything about one run a reader asks first: status and times, a summary of its
    config, its metrics (per fold for cross-validation), and where its files are."""
    path = _open(path)
    run = RunDir(path)
    entry = read_run(path)
    info: dict[str, Any] = {}
    if entry["status"] != "unreadable":
        info = read_json(run.info_file)
    config = read_config(path) if run.config.exists() else {}
    shown: dict[str, Any] = {
        "run_dir": str(path), "name": config.get("name", entry["name"]),
        "status": entry["status"],
        **{k: info[k] for k in ("started_at", "finished_at", "duration_s", "seed", "task",
                                "strategy", "error", "no_model_reason", "warnings", "notes")
           if info.get(k) not in (None, [], "")},
        "overrides": entry["overrides"], "config": config_summary(config),
        "metrics": entry["metrics"], "problems": entry["problems"]}
    if run.cv_summary.exists():
        try:
            summary = read_json(run.cv_summary)
            shown["cv_summary"] = {"splitter": summary.get("splitter"),
                                   "folds": summary.get("folds"),
                                   "metrics": summary.get("metrics")}
        except RunDirError as exc:
            shown["problems"].append(f"cv_summary.json: {exc}")
    shown["files"] = {p.name + ("/" if p.is_dir() else ""): str(p)
                      for p in sorted(path.iterdir()) if not p.name.startswith(".")}
    return shown


# The validation keys that mean something under each scheme (a hold-out run has no folds
# to refit after, nor repeats).
_SCHEME_KEYS = {"holdout": ("scheme", "test_split", "validation_split"),
                "kfold": ("scheme", "n_splits", "test_split", "validation_split", "refit"),
                "repeated_kfold": ("scheme", "n_splits", "n_repeats", "test_split",
                                   "validation_split", "refit")}


def config_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The few config facts that tell runs apart at a glance."""
    if not config:
        return {}
    model = config.get("model", {}) or {}
    layers = model.get("layers") or model.get("nodes") or []
    compile_ = config.get("compile", {}) or {}
    validation = config.get("validation", {}) or {}
    source = (config.get("data", {}) or {}).get("source", {}) or {}
    return {
        "data": ", ".join(f"{k}={v}" for k, v in source.items()),
        "model": " -> ".join(_describe(layer) for layer in layers),
        "optimizer": _describe(compile_.get("optimizer")),
        "loss": _describe(compile_.get("loss")),
        "metrics": _describe(compile_.get("metrics")),
        "training": ", ".join(f"{k}={v}" for k, v in (config.get("training") or {}).items()
                              if k in ("epochs", "batch_size")),
        "validation": ", ".join(f"{k}={v}" for k, v in validation.items()
                                if k in _SCHEME_KEYS.get(validation.get("scheme", "holdout"),
                                                         ())),
        "seed": config.get("seed"),
    }


def _describe(obj: Any) -> str:
    if isinstance(obj, dict) and "type" in obj:
        args = ", ".join(f"{k}={v}" for k, v in obj.items() if k not in ("type", "name",
                                                                           "inputs"))
        return f"{obj['type']}({args})"
    if isinstance(obj, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in obj.items())
    if isinstance(obj, list):
        return "[" + ", ".join(_describe(v) for v in obj) + "]"
    return "" if obj is None else str(obj)


def compare_configs(paths: Iterable[str | Path]) -> dict[str, Any]:
    """The config keys (dotted paths) whose values differ between runs, and every metric
    side by side. A key missing from a run shows as None. Each run's status and problems
    come along: a run whose run.json or config.yaml cannot be read is `unreadable` (its
    config keys None), as `runs` and `runs show` say, rather than an error."""
    runs = [_open(p) for p in paths]
    if len(runs) < 2:
        raise RunsError("runs compare needs at least two runs.")
    entries = [read_run(p) for p in runs]
    configs: list[dict[str, Any] | None] = []
    for path, entry in zip(runs, entries, strict=True):
        try:
            configs.append(flatten(read_config(path)))
        except RunDirError as exc:
            entry.update(status="unreadable", problems=[*entry["problems"], str(exc)])
            configs.append(None)
    readable = [c for c in configs if c is not None]
    keys = list(dict.fromkeys(k for c in readable for k in c))
    differing = {k: [None if c is None else c.get(k) for c in configs] for k in keys
                 if len({json.dumps(c.get(k), sort_keys=True, default=str)
                         for c in readable}) > 1}
    metrics = [flat_metrics(e["metrics"]) for e in entries]
    names = sorted({k for m in metrics for k in m})
    return {"runs": [str(p) for p in runs], "status": [e["status"] for e in entries],
            "problems": [e["problems"] for e in entries], "config_differences": differing,
            "metrics": {k: [m.get(k) for m in metrics] for k in names}}

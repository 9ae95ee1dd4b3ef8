"""`kerastrain runs export --mlflow URI`: runs logged to an MLflow tracking store (a SQLite
file by default), so that `mlflow ui` shows them: each run's config as params (dotted
keys), its per-epoch curves (history.csv, or the mean over folds) and final metrics, its
status and sweep trial as tags, and the files at the top of its run directory as
artifacts. A run already exported to that experiment (tag `kerastrain.run_dir`) is
skipped. Needs the `[mlflow]` extra; imports no TensorFlow."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import yaml

from kerastrain.errors import UserError
from kerastrain.rundir import RunDir, read_json
from kerastrain.runs import flat_metrics

DEFAULT_URI = "sqlite:///mlflow.db"
_BATCH = 100  # MLflow takes at most 100 params (1000 metrics) per call


class ExportError(UserError):
    """Runs that cannot be exported (MLflow missing, a store that cannot be opened)."""


def flat_params(data: Any, prefix: str = "") -> dict[str, str]:
    """`{a: {b: 1}, c: [x, y]}` -> `{a.b: '1', c: '["x", "y"]'}` (MLflow params are texts)."""
    if isinstance(data, dict):
        found: dict[str, str] = {}
        for key, value in data.items():
            found.update(flat_params(value, f"{prefix}{key}."))
        return found
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    return {prefix.rstrip("."): text[:6000]}


def _curves(run: RunDir) -> list[tuple[int, dict[str, float]]]:
    """(epoch, {metric: value}) per epoch: the run's history, or a cross-validation run's
    mean over folds."""
    for path in (run.path / "history.csv", run.path / "cv_history.csv"):
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            found = []
            for i, row in enumerate(rows):
                epoch = int(float(row.pop("epoch", i + 1) or i + 1))
                values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
                found.append((epoch, {k: v for k, v in values.items() if math.isfinite(v)}))
            return found
    return []


def _experiment(client: Any, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    from sqlalchemy.engine import make_url

    location = None
    if uri.startswith("sqlite:"):  # artifacts beside the database, not in the cwd
        database = make_url(uri).database or "mlflow.db"
        location = (Path(database).absolute().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def export_mlflow(found: list[dict[str, Any]], uri: str = DEFAULT_URI,
                  experiment: str = "kerastrain") -> list[dict[str, Any]]:
    """Log each listed run (`runs.find_runs` entries) to the MLflow store at `uri`;
    returns per run its run_dir, MLflow run id and whether it was new."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError("--mlflow needs MLflow: pip install 'kerastrain[mlflow]'") from None
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment(client, experiment, uri)
    except Exception as exc:  # a URI MLflow cannot open, in any of its ways
        raise ExportError(f"--mlflow {uri}: {type(exc).__name__}: {exc}") from None
    done = []
    for entry in found:
        run = RunDir(Path(entry["run_dir"]))
        key = str(run.path.absolute())
        earlier = client.search_runs([experiment_id],
                                     filter_string=f"tags.`kerastrain.run_dir` = '{key}'")
        if earlier:
            done.append({"run_dir": key, "mlflow_run_id": earlier[0].info.run_id,
                         "new": False})
            continue
        info = read_json(run.info_file) if run.info_file.is_file() else {}
        config = yaml.safe_load((run.path / "config.yaml").read_text()) \
            if (run.path / "config.yaml").is_file() else {}
        sweep = info.get("sweep") or {}
        tags = {"kerastrain.run_dir": key, "kerastrain.status": str(info.get("status")),
                "mlflow.runName": run.path.name,
                **({"kerastrain.sweep": str(sweep.get("dir")),
                    "kerastrain.trial": str(sweep.get("trial"))} if sweep else {})}
        created = client.create_run(experiment_id, tags=tags)
        run_id = created.info.run_id
        params = [Param(k, v) for k, v in flat_params(config).items()]
        for start in range(0, len(params), _BATCH):
            client.log_batch(run_id, params=params[start:start + _BATCH])
        metrics = [Metric(name, value, 0, epoch) for epoch, values in _curves(run)
                   for name, value in values.items()]
        final = flat_metrics(read_json(run.metrics)) if run.metrics.is_file() else {}
        metrics += [Metric(name, float(value), 0, 0) for name, value in final.items()
                    if isinstance(value, (int, float)) and math.isfinite(value)]
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start:start + 1000])
        if info.get("command"):
            client.log_batch(run_id, tags=[RunTag("kerastrain.command",
                                                  " ".join(info["command"])[:5000])])
        for path in sorted(run.path.iterdir()):
            if path.is_file():
                client.log_artifact(run_id, str(path))
        status = {"completed": "FINISHED", "running": "RUNNING", "pruned": "KILLED",
                  "interrupted": "KILLED"}.get(info.get("status"), "FAILED")
        if status != "RUNNING":
            client.set_terminated(run_id, status=status)
        done.append({"run_dir": key, "mlflow_run_id": run_id, "new": True})
    return done

"""`kerastrain sweep`: trials from --grid and --random, every trial's config checked before
training, the sweep directory (sweep.json, manifest.csv), reruns that skip completed trials
and resume interrupted ones, the Ray executor."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, heavy_modules_after, iris_config, write_config
from kerastrain.config import load_config
from kerastrain.errors import UserError
from kerastrain.sweep.manifest import Row, check_metric, logged_metrics, trial_metric
from kerastrain.sweep.run import plan, rank
from kerastrain.sweep.space import (
    SweepError,
    draw,
    make_trials,
    parse_param,
    parsed,
    split_values,
    yaml_float,
)
from kerastrain.training import fold as fold_module

GRID = ("--grid", "compile.optimizer.learning_rate=0.01,0.05",
        "--grid", "training.batch_size=16,32")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A tiny iris run: 2 epochs, no plots."""
    cfg = iris_config(tmp_path / "runs")
    cfg["training"]["epochs"] = 2
    cfg["output"]["plots"] = False
    return write_config(tmp_path / "iris.yaml", cfg)


def _json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def _manifest(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _run_dirs(runs: Path) -> set[str]:
    return {p.name for p in runs.iterdir() if (p / "run.json").exists()}


# -- the trials ------------------------------------------------------------------------------

def test_values_split_on_top_level_commas_only() -> None:
    assert split_values("a, b,[1,2],{x: 1, y: 2},'c,d'") == \
        ["a", "b", "[1,2]", "{x: 1, y: 2}", "'c,d'"]


@pytest.mark.parametrize("value", [1e-5, 0.001, 3.0, 12345678.0, 2.5e-10, 0.1])
def test_drawn_floats_read_back_as_floats(value: float) -> None:
    text = yaml_float(value)
    assert isinstance(yaml.safe_load(text), float)
    assert yaml.safe_load(text) == pytest.approx(value, rel=1e-5)


def test_a_fixed_seed_draws_the_same_trials() -> None:
    params = [parse_param("compile.optimizer.learning_rate=loguniform:1e-4,1e-1"),
              parse_param("training.batch_size=int:8,64"),
              parse_param("model.layers.0.activation=choice:relu,tanh,gelu"),
              parse_param("training.epochs=uniform:2,3")]
    first, again, other = draw(params, 20, 7), draw(params, 20, 7), draw(params, 20, 8)
    assert first == again and first != other
    for trial in first:
        lr = yaml.safe_load(trial["compile.optimizer.learning_rate"])
        assert 1e-4 <= lr <= 1e-1 and isinstance(lr, float)
        assert 8 <= int(trial["training.batch_size"]) <= 64
        assert trial["model.layers.0.activation"] in ("relu", "tanh", "gelu")


def test_grid_is_the_cartesian_product_crossed_with_the_draws() -> None:
    trials = make_trials(["a=1,2", "b=x,y,z"], 2, ["c=int:1,5"], seed=0, fixed=["d=1"])
    assert len(trials) == 12
    assert [(t["a"], t["b"]) for t in trials[:6]] == \
        [("1", "x"), ("1", "y"), ("1", "z"), ("2", "x"), ("2", "y"), ("2", "z")]


@pytest.mark.parametrize("args, message", [
    ((["a=1,2"], 0, [], ["a=3"]), "a is given twice"),
    (([], 0, [], []), "nothing to sweep"),
    (([], 3, [], []), "needs at least one --param"),
    (([], 0, ["a=int:1,2"], []), "needs --random N"),
    (([], 2, ["a=gaussian:0,1"], []), "unknown distribution 'gaussian'"),
    (([], 2, ["a=loguniform:0,1"], []), "above 0"),
    (([], 2, ["a=uniform:2,1"], []), "LOW must be below HIGH"),
    (([], 2, ["a=int:1.5,3"], []), "not an integer"),
    ((["a=1,,2"], 0, [], []), "an empty value"),
    ((["a"], 0, [], []), "expected KEY=VALUES"),
])
def test_sweep_arguments_that_cannot_be_used(args, message: str) -> None:
    grid, random, params, fixed = args
    with pytest.raises(SweepError, match=message):
        make_trials(grid, random, params, 0, fixed)
    assert issubclass(SweepError, UserError)


@pytest.mark.parametrize(("metric", "best_first"), [
    ("val_accuracy", ["t3", "t1"]), ("val_loss", ["t1", "t3"])])
def test_trials_rank_best_first_either_way_and_unfinished_ones_last(
        metric: str, best_first: list[str]) -> None:
    """Accuracy ranks higher first, loss lower first; a completed trial without the metric
    follows the scored ones, then the pruned, then failed and interrupted trials, even
    when such a run holds a value better than every completed one."""
    rows = [Row("t1", {}, "completed", value=0.2), Row("t2", {}, "failed", value=0.99),
            Row("t3", {}, "completed", value=0.9), Row("t4", {}, "completed"),
            Row("t5", {}, "interrupted", value=0.0), Row("t6", {}, "pruned", value=0.5)]
    ranked, direction = rank(rows, metric)
    assert direction == ("higher" if "accuracy" in metric else "lower")
    assert [r.trial for r in ranked][:4] == [*best_first, "t4", "t6"]
    assert {r.trial for r in ranked[4:]} == {"t2", "t5"}


def test_cross_validation_trials_rank_by_the_fold_mean_with_its_interval(
        tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"validation": {"loss": 0.5, "accuracy": 0.9}, "test": {"loss": 0.7}}))
    (tmp_path / "cv_summary.json").write_text(json.dumps(
        {"metrics": {"loss": {"mean": 0.5, "ci95": [0.4, 0.6]}}}))
    assert trial_metric(tmp_path, "val_loss") == (0.5, [0.4, 0.6])
    assert trial_metric(tmp_path, "test.loss") == (0.7, None)
    assert trial_metric(tmp_path, "accuracy") == (0.9, None)
    assert trial_metric(tmp_path, "val_auc") == (None, None)


# -- the command -----------------------------------------------------------------------------

def test_a_bad_grid_value_is_exit_2_before_any_training(cli, config: Path,
                                                         tmp_path: Path) -> None:
    result = cli("sweep", config, "--grid", "training.epochs=2,abc")
    assert result.exit_code == 2
    assert "trial t002 (training.epochs=abc)" in result.stderr
    assert "training.epochs" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_exponent_values_of_a_grid_are_numbers(config: Path) -> None:
    """`1e-3` on a grid (YAML 1.1 text) reaches the trial's config, and run.json, as a number."""
    sweep = plan(config, [], ["compile.optimizer.learning_rate=1e-3,1E-2"], 0, [])
    for row, number in zip(sweep.rows, (0.001, 0.01), strict=True):
        sets = [f"{k}={v}" for k, v in row.overrides.items()]
        optimizer = load_config(config, sets).config.compile.optimizer
        assert optimizer.args["learning_rate"] == number
        assert parsed(row.overrides) == {"compile.optimizer.learning_rate": number}


def test_a_sweep_dir_under_a_file_is_exit_2_before_any_trial_is_checked(
        cli, config: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    for extra in ((), ("--dry-run",)):
        result = cli("sweep", config, "--grid", "training.epochs=2,abc", "--sweep-dir",
                     tmp_path / "afile" / "sweep", *extra)
        assert result.exit_code == 2, result.output
        assert f"{tmp_path / 'afile'} is a file" in result.stderr
        assert "--sweep-dir" in result.stderr and "Traceback" not in result.stderr
        assert "trial t002" not in result.stderr  # found with the arguments, not the trials
    assert not (tmp_path / "runs").exists()


def test_a_metric_no_run_logs_is_exit_2_before_any_training(cli, config: Path,
                                                             tmp_path: Path) -> None:
    result = cli("sweep", config, *GRID, "--metric", "val_f1")
    assert result.exit_code == 2, result.output
    assert "--metric 'val_f1'" in result.stderr and "validation.f1" in result.stderr
    assert "validation.accuracy, validation.loss" in result.stderr
    assert "test.loss" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
    for logged in ("val_accuracy", "test.loss", "loss"):
        assert cli("sweep", config, *GRID, "--metric", logged, "--dry-run").exit_code == 0


def test_the_metrics_a_config_logs_without_keras(tmp_path: Path) -> None:
    cfg = iris_config(tmp_path / "runs")
    cfg["compile"]["metrics"] = ["accuracy", {"type": "FBetaScore", "beta": 2.0},
                                 {"type": "AUC", "name": "roc"}, {"type": "Precision"}]
    cfg["compile"]["weighted_metrics"] = ["accuracy"]
    loaded = load_config(write_config(tmp_path / "m.yaml", cfg)).config
    assert logged_metrics(loaded)[:6] == [
        "validation.Precision", "validation.accuracy", "validation.f_beta_score",
        "validation.loss", "validation.roc", "validation.weighted_accuracy"]
    for logged in ("val_accuracy", "val_fbeta_score", "test.roc", "val_weighted_accuracy",
                   "out_loss", "validation.precision"):
        check_metric(logged, [loaded])
    for missing in ("val_auc", "val_f1", "validation.recall"):
        with pytest.raises(SweepError, match="no run of this config logs"):
            check_metric(missing, [loaded])


def test_ray_without_ray_or_an_address_without_ray(cli, config: Path, monkeypatch) -> None:
    result = cli("sweep", config, *GRID, "--address", "ray://head:10001")
    assert result.exit_code == 2 and "--executor ray" in result.stderr
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    result = cli("sweep", config, *GRID, "--executor", "ray")
    assert result.exit_code == 2 and "pip install 'kerastrain[ray]'" in result.stderr


def test_random_dry_run_lists_the_same_trials_for_the_same_seed(cli, config: Path) -> None:
    args = ("sweep", config, "--random", "4", "--param",
            "compile.optimizer.learning_rate=loguniform:1e-3,1e-1", "--param",
            "training.batch_size=choice:8,16,32", "--dry-run", "--json")
    first, again = _json(cli(*args, "--seed", "3")), _json(cli(*args, "--seed", "3"))
    other = _json(cli(*args, "--seed", "4"))
    assert first == again and len(first["trials"]) == 4 and first["seed"] == 3
    assert [t["overrides"] for t in first["trials"]] != [t["overrides"] for t in other["trials"]]
    assert first["sweep_dir"] != other["sweep_dir"]
    assert not Path(first["sweep_dir"]).exists()  # a dry run writes nothing


def test_grid_sweep_then_the_same_command_trains_nothing(cli, config: Path,
                                                         tmp_path: Path) -> None:
    result = cli("sweep", config, *GRID, "--json")
    assert result.exit_code == 0, result.output
    out = _json(result)
    sweep_dir = Path(out["sweep_dir"])
    assert sweep_dir.parent == tmp_path / "runs" / "sweeps"
    assert sweep_dir.name.startswith("iris-test-")
    assert len(out["trials"]) == 4 and out["completed"] == 4
    assert {t["action"] for t in out["trials"]} == {"trained"}
    losses = [t["metric"] for t in out["trials"]]
    assert losses == sorted(losses)  # best first
    runs = _run_dirs(tmp_path / "runs")
    assert len(runs) == 4
    rows = _manifest(sweep_dir)
    assert [r["trial"] for r in rows] == ["t001", "t002", "t003", "t004"]
    assert [(r["set:compile.optimizer.learning_rate"], r["set:training.batch_size"])
            for r in rows] == [("0.01", "16"), ("0.01", "32"), ("0.05", "16"), ("0.05", "32")]
    assert all(r["status"] == "completed" and float(r["validation.loss"]) > 0 for r in rows)
    recorded = json.loads((sweep_dir / "sweep.json").read_text())
    assert recorded["grid"] == [GRID[1], GRID[3]] and recorded["metric"] == "validation.loss"
    info = json.loads((Path(rows[1]["run_dir"]) / "run.json").read_text())
    assert info["overrides"] == {"compile.optimizer.learning_rate": 0.01,
                                 "training.batch_size": 32}
    assert info["sweep"] == {"dir": str(sweep_dir), "trial": "t002"}
    if info["tensorboard"] != "logs/":  # said in run.json, no warning (tensorboard: auto)
        assert "pip install 'kerastrain[tensorboard]'" in info["tensorboard"]
        assert not any("TensorBoard" in w for w in info["warnings"])

    again = cli("sweep", config, *GRID)
    assert again.exit_code == 0, again.output
    assert _run_dirs(tmp_path / "runs") == runs
    assert "epoch" not in again.stderr
    assert again.stdout.count("(skipped)") == 4
    rows_again = _manifest(sweep_dir)
    assert [{k: v for k, v in r.items() if k != "action"} for r in rows_again] == \
        [{k: v for k, v in r.items() if k != "action"} for r in rows]
    assert {r["action"] for r in rows_again} == {"skipped"}
    # the same command once more, through the entry point in a fresh interpreter: with every
    # trial completed it checks the configs and skips them, and never loads TensorFlow
    code, heavy = heavy_modules_after(tmp_path, "sweep", config, *GRID)
    assert code == 0 and "tensorflow" not in heavy and "keras" not in heavy, heavy

    listed = _json(cli("runs", "--sweep", sweep_dir, "--json"))["runs"]
    assert len(listed) == 4 and {r["status"] for r in listed} == {"completed"}
    assert {r["run_dir"] for r in listed} == {r["run_dir"] for r in rows}
    assert all(r["metrics"]["validation"]["loss"] > 0 for r in listed)
    assert {r["overrides"]["training.batch_size"] for r in listed} == {16, 32}


def test_a_failed_trial_fails_the_sweep_but_not_the_others(cli, config: Path,
                                                            tmp_path: Path) -> None:
    # 'Adm' passes the schema (any name) and fails when the trial checks its optimizer.
    result = cli("sweep", config, "--grid", "compile.optimizer.type=Adam,Adm", "--json")
    assert result.exit_code == 1, result.output
    trials = {t["trial"]: t for t in _json(result)["trials"]}
    assert trials["t001"]["status"] == "completed"
    assert trials["t002"]["status"] == "failed" and "Adm" in trials["t002"]["error"]
    assert "Did you mean 'Adam'" in trials["t002"]["error"]
    rows = {r["trial"]: r for r in _manifest(Path(_json(result)["sweep_dir"]))}
    assert rows["t002"]["status"] == "failed" and "Adm" in rows["t002"]["error"]
    assert len(_run_dirs(tmp_path / "runs")) == 1


def test_fail_fast_stops_at_the_first_failed_trial(cli, config: Path, tmp_path: Path) -> None:
    result = cli("sweep", config, "--grid", "compile.optimizer.type=Adm,Adam", "--fail-fast")
    assert result.exit_code == 1, result.output
    assert "2 trials did not complete" in result.stderr
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    assert [(r["status"], r["action"]) for r in _manifest(sweep_dir)] == \
        [("failed", "trained"), ("pending", "")]
    assert not _run_dirs(tmp_path / "runs")


@pytest.mark.slow  # two worker processes, each importing TensorFlow (~30 s on 2 busy cores)
def test_trials_side_by_side_in_worker_processes(cli, config: Path, tmp_path: Path) -> None:
    result = cli("sweep", config, "--grid", "training.batch_size=16,32", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("t001 holdout epoch 2/2") == 1  # forwarded from its worker
    assert "TensorBoard" not in result.stderr  # tensorboard: auto never warns
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = _manifest(sweep_dir)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    for row in rows:  # the trials share the cores: their folds train one after another
        resolved = yaml.safe_load((Path(row["run_dir"]) / "config.yaml").read_text())
        assert resolved["runtime"]["workers"] == 1
        info = json.loads((Path(row["run_dir"]) / "run.json").read_text())
        assert info["overrides"] == {"training.batch_size": int(row["set:training.batch_size"])}


def _interrupt_second_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C at the start of epoch 2 of the second model trained."""
    original, calls = fold_module.EpochBackup, []

    class Interrupting(original):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            calls.append(self)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 1 and len(calls) == 2 and calls[1] is self:
                raise KeyboardInterrupt

    monkeypatch.setattr(fold_module, "EpochBackup", Interrupting)


def test_a_rerun_resumes_interrupted_trials_in_their_run_directories(
        cli, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("sweep", config, "--grid", "compile.optimizer.learning_rate=0.01,0.05,0.1")
    with monkeypatch.context() as patch:
        _interrupt_second_fit(patch)
        result = cli(*args)
    assert result.exit_code == 130, result.output
    assert "Run the same command again to resume the sweep" in result.stderr
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = {r["trial"]: r for r in _manifest(sweep_dir)}
    assert [rows[t]["status"] for t in ("t001", "t002", "t003")] == \
        ["completed", "interrupted", "pending"]
    interrupted = Path(rows["t002"]["run_dir"])
    assert json.loads((interrupted / "run.json").read_text())["status"] == "interrupted"

    # As if the process had been killed: the run still says running, the manifest is lost.
    info = json.loads((interrupted / "run.json").read_text())
    (interrupted / "run.json").write_text(json.dumps({**info, "status": "running"}))
    (sweep_dir / "manifest.csv").unlink()
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    trials = {t["trial"]: t for t in _json(result)["trials"]}
    assert [trials[t]["action"] for t in ("t001", "t002", "t003")] == \
        ["skipped", "resumed", "trained"]
    assert trials["t002"]["run_dir"] == str(interrupted)
    info = json.loads((interrupted / "run.json").read_text())
    assert info["status"] == "completed"
    assert [(r["was"], r["epochs_done"]) for r in info["resumes"]] == [("running", 1)]
    assert len(_run_dirs(tmp_path / "runs")) == 3


def test_sweep_help_and_dry_run_import_no_tensorflow(config: Path) -> None:
    code = ("import sys; from typer.testing import CliRunner; from kerastrain.cli import app; "
            f"r = CliRunner().invoke(app, ['sweep', {str(config)!r}, '--grid', "
            "'training.epochs=2,3', '--dry-run']); assert r.exit_code == 0, r.output; "
            "CliRunner().invoke(app, ['sweep', '--help']); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO / "src"),
                                         "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


@pytest.mark.slow  # starts a local Ray (a few seconds) and a TensorFlow per trial
def test_a_sweep_starts_its_own_local_ray_and_runs_each_trial_as_a_ray_task(
        config: Path, tmp_path: Path) -> None:
    """The README's path: no Ray running, the sweep command starts one for itself, runs
    each trial of a TPE search (its study shared by the Ray workers) as a Ray task (in a
    Ray worker process, whose log file carries its pid: the pid holding the trial's run
    lock), and stops it at the end: none of its processes outlives the command. Ray is in
    the `test` extra: a missing Ray fails here. (The grid on Ray: the next test.)"""
    import ray  # noqa: F401  (the test extra installs it; not skipped when missing)

    ray_tmp = Path(tempfile.mkdtemp(prefix="kt-ray-", dir="/tmp"))  # socket paths: short
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kerastrain", "sweep", config, "--search", "tpe",
             "--trials", "3", "--param", "compile.optimizer.learning_rate=loguniform:1e-3,1e-1",
             "--seed", "0", "--executor", "ray", "--jobs", "2", "--json"],
            capture_output=True, text=True, timeout=400,
            env={**os.environ, "RAY_TMPDIR": str(ray_tmp)})
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["completed"] == 3
        rows = _manifest(Path(out["sweep_dir"]))
        assert [r["trial"] for r in rows] == ["t001", "t002", "t003"]
        assert [r["status"] for r in rows] == ["completed"] * 3
        assert len({r["run_dir"] for r in rows}) == 3
        assert {Path(r["run_dir"]).parent for r in rows} == {tmp_path / "runs"}
        (session,) = (ray_tmp / "ray").glob("session_2*")  # the Ray the sweep started
        ray_workers = {int(p.stem.rsplit("-", 1)[1])
                       for p in (session / "logs").glob("worker-*.out")}
        trainers = {int((Path(r["run_dir"]) / ".lock").read_text()) for r in rows}
        assert len(trainers) >= 2 and trainers <= ray_workers, (trainers, ray_workers)
        deadline = time.monotonic() + 15
        while (left := [p.name for p in Path("/proc").glob("[0-9]*")
                        if str(ray_tmp).encode() in _cmdline(p)]) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, f"Ray processes left running: {left}"
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow  # starts a Ray head (a few seconds), then a sweep on it
def test_a_sweep_on_a_running_ray_cluster_at_its_address(config: Path, tmp_path: Path) -> None:
    """`--address`: a Ray head started beforehand (as on a cluster) runs each trial as a
    task in one of its workers, and the sweep leaves that cluster running when it ends (it
    only disconnects). Only this test's own Ray processes are stopped afterwards."""
    import socket

    import ray  # noqa: F401  (the test extra installs it; not skipped when missing)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_tmp = Path(tempfile.mkdtemp(prefix="kt-rayh-", dir="/tmp"))
    token = "kt" + os.urandom(16).hex()
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": token}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    try:
        head = subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2",
                               "--include-dashboard=false", "--disable-usage-stats",
                               f"--temp-dir={ray_tmp / 'ray'}"], capture_output=True,
                              text=True, timeout=120, env=env)
        assert head.returncode == 0, head.stderr[-3000:]
        sweep = [sys.executable, "-m", "kerastrain", "sweep", config, "--grid",
                 "compile.optimizer.learning_rate=0.01,0.05", "--executor", "ray", "--jobs",
                 "2", "--address", f"127.0.0.1:{port}", "--json"]
        without = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"}
        refused = subprocess.run(sweep, capture_output=True, text=True, timeout=400,
                                 env={**without, "RAY_AUTH_MODE": "disabled",
                                      "RAY_gcs_server_port_wait_time_s": "2"})  # 2 tries, not 20
        assert refused.returncode == 2, refused.stderr[-3000:]  # said, not a traceback
        assert f"cannot connect to the Ray cluster at 127.0.0.1:{port}" in refused.stderr
        assert "Traceback" not in refused.stderr
        done = subprocess.run(
            [sys.executable, "-m", "kerastrain", "sweep", config, "--grid",
             "compile.optimizer.learning_rate=0.01,0.05", "--executor", "ray", "--jobs", "2",
             "--address", f"127.0.0.1:{port}", "--json"], capture_output=True, text=True,
            timeout=400, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        rows = _manifest(Path(out["sweep_dir"]))
        assert [r["status"] for r in rows] == ["completed", "completed"]
        (session,) = (ray_tmp / "ray").glob("session_2*")  # the head's session
        ray_workers = {int(p.stem.rsplit("-", 1)[1])
                       for p in (session / "logs").glob("worker-*.out")}
        trainers = {int((Path(r["run_dir"]) / ".lock").read_text()) for r in rows}
        assert len(trainers) == 2 and trainers <= ray_workers, (trainers, ray_workers)
        status = subprocess.run([ray_cli, "status", f"--address=127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=60, env=env)
        assert status.returncode == 0, status.stderr[-2000:]  # still up after the sweep
    finally:
        for proc in Path("/proc").glob("[0-9]*"):
            if str(ray_tmp).encode() in _cmdline(proc):
                try:
                    os.kill(int(proc.name), 9)
                except OSError:
                    pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""

"""Worker processes under faults, through the real command line: a trial's worker killed
with kill -9 fails that trial alone; Ctrl-C (to the whole process group, as a terminal
sends it) and SIGTERM (to the parent alone) stop a sweep with two jobs and a
cross-validation fit with two workers: exit 130, every run `interrupted`, no worker left
behind, and the same sweep command (or `resume`) completes the work."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from conftest import iris_config, write_config
from processes import epochs, info, no_process_left, run, workers

STOPS = {"ctrl-c": lambda proc: os.killpg(proc.pid, signal.SIGINT),
         "sigterm": lambda proc: proc.proc.send_signal(signal.SIGTERM)}


def _manifest(sweep_dir: Path) -> dict[str, dict[str, str]]:
    with open(sweep_dir / "manifest.csv", newline="") as handle:
        return {r["trial"]: r for r in csv.DictReader(handle)}


def _config(tmp_path: Path, epochs: int, **changes) -> Path:
    config = iris_config(tmp_path / "runs", **changes)
    config["training"] = {"epochs": epochs, "batch_size": 8}
    config["output"]["plots"] = False
    return write_config(tmp_path / "config.yaml", config)


def _trial_run(runs: Path, trial: str) -> Path:
    """The run directory a sweep's trial made (its run.json names the trial)."""
    for _ in range(100):
        for info_file in runs.glob("*/run.json"):
            if json.loads(info_file.read_text()).get("sweep", {}).get("trial") == trial:
                return info_file.parent
        time.sleep(0.1)
    pytest.fail(f"no run of trial {trial}")


@pytest.mark.slow  # a sweep with two worker processes, then its rerun
def test_a_killed_trial_worker_fails_that_trial_alone_and_a_rerun_resumes_it(
        tmp_path: Path, start) -> None:
    config = _config(tmp_path, 40)
    args = ("sweep", config, "--grid", "training.epochs=40,8", "--jobs", "2")
    proc = start(*args)
    proc.wait_for("t001 holdout epoch 3/40")
    run_dir = _trial_run(tmp_path / "runs", "t001")
    worker = int((run_dir / ".lock").read_text())  # the process training it holds its lock
    assert worker != proc.pid
    os.kill(worker, signal.SIGKILL)
    code, _, rest = proc.finish(timeout=300)
    assert code == 1, rest
    assert "Traceback" not in rest
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = _manifest(sweep_dir)
    assert rows["t002"]["status"] == "completed"
    assert rows["t001"]["status"] == "failed" and rows["t001"]["run_dir"] == str(run_dir)
    assert f"worker process (pid {worker}) ended without reporting" in rows["t001"]["error"]
    assert info(run_dir)["status"] == "running"  # as a kill -9 leaves a run
    no_process_left(proc.pid)

    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    trials = {t["trial"]: t for t in json.loads(again.stdout.splitlines()[-1])["trials"]}
    assert [trials[t]["action"] for t in ("t001", "t002")] == ["resumed", "skipped"]
    record = info(run_dir)
    assert record["status"] == "completed" and record["resumes"][0]["was"] == "running"
    assert epochs(run_dir / "history.csv") == list(range(1, 41))


SWEEP_EPOCHS = 40


@pytest.mark.slow  # a sweep with two worker processes stopped, then its rerun
@pytest.mark.parametrize("how", list(STOPS))
def test_a_sweep_with_two_jobs_stops_cleanly_and_its_rerun_completes_it(
        tmp_path: Path, start, how: str) -> None:
    config = _config(tmp_path, SWEEP_EPOCHS)
    settings = yaml.safe_load(config.read_text())
    settings["training"]["batch_size"] = 1  # ~0.1 s an epoch: more than the relay's lag
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    args = ("sweep", config, "--grid", "compile.optimizer.learning_rate=0.01,0.02",
            "--jobs", "2")
    proc = start(*args)
    proc.wait_for(f"t001 holdout epoch 2/{SWEEP_EPOCHS}")
    first = int((_trial_run(tmp_path / "runs", "t001") / ".lock").read_text())
    os.kill(first, signal.SIGSTOP)  # t001's worker waits (on a busy machine the second
    stopped = [first]               # worker may start many seconds later) until t002 trains
    try:
        proc.wait_for(f"t002 holdout epoch 2/{SWEEP_EPOCHS}")
        second = int((_trial_run(tmp_path / "runs", "t002") / ".lock").read_text())
        os.kill(second, signal.SIGSTOP)  # held mid-training too: the stop reaches both
        stopped.append(second)           # trials before either can finish
        STOPS[how](proc)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    code, _, rest = proc.finish(timeout=300)
    assert code == 130, rest
    assert "Traceback" not in rest and "Run the same command again" in rest
    no_process_left(proc.pid)
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = _manifest(sweep_dir)
    assert [rows[t]["status"] for t in ("t001", "t002")] == ["interrupted"] * 2
    for row in rows.values():
        assert info(row["run_dir"])["status"] == "interrupted"
        kept = epochs(Path(row["run_dir"]) / "history.csv")  # the epochs done, kept
        assert kept == list(range(1, len(kept) + 1)) and 2 <= len(kept) < SWEEP_EPOCHS

    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    trials = json.loads(again.stdout.splitlines()[-1])["trials"]
    assert [(t["status"], t["action"]) for t in trials] == [("completed", "resumed")] * 2
    for row in rows.values():
        assert epochs(Path(row["run_dir"]) / "history.csv") == list(
            range(1, SWEEP_EPOCHS + 1))


# The worker's fold is stopped right after its epoch 2 (the parent's lane may be further):
# the epochs left are ample for a signal, and few to resume.
FOLD_EPOCHS = 40


def _kfold_config(tmp_path: Path) -> Path:
    return _config(tmp_path, FOLD_EPOCHS, runtime={"workers": 2},
                   validation={"scheme": "kfold", "n_splits": 3, "test_split": 0.2})


@pytest.mark.slow  # a 3-fold fit in two worker processes stopped, then resumed
@pytest.mark.parametrize("how", list(STOPS))
def test_a_fit_with_fold_workers_stops_cleanly_and_resumes(cli, tmp_path: Path, start,
                                                          how: str) -> None:
    proc = start("fit", _kfold_config(tmp_path))  # the parent trains 0-0 first, a worker 0-2
    proc.wait_for(f"fold 0-0 epoch 2/{FOLD_EPOCHS}", f"fold 0-2 epoch 2/{FOLD_EPOCHS}")
    STOPS[how](proc)
    code, _, rest = proc.finish(timeout=300)
    assert code == 130, rest
    assert "Traceback" not in rest
    no_process_left(proc.pid)
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert f"kerastrain resume {run_dir}" in rest
    assert info(run_dir)["status"] == "interrupted"
    assert not (run_dir / "folds" / "0-2" / "metrics.json").exists()  # stopped mid-fold

    done = cli("resume", run_dir, "--json")  # here, where TensorFlow is loaded already
    assert done.exit_code == 0, done.output
    assert info(run_dir)["status"] == "completed"
    for fold in ("0-0", "0-1", "0-2"):  # every epoch once, in order
        assert epochs(run_dir / "folds" / fold / "history.csv") == list(
            range(1, FOLD_EPOCHS + 1)), fold


@pytest.mark.slow  # a 3-fold fit in the parent and a worker, the worker killed, then resumed
def test_a_killed_fold_worker_fails_the_run_resumably(cli, tmp_path: Path,
                                                       start) -> None:
    proc = start("fit", _kfold_config(tmp_path))  # the parent trains 0-0 first, a worker 0-2
    proc.wait_for(f"fold 0-0 epoch 3/{FOLD_EPOCHS}", f"fold 0-2 epoch 3/{FOLD_EPOCHS}")
    lanes = workers(proc.pid)
    assert len(lanes) == 1, lanes  # the other lane is the parent itself
    os.kill(lanes[0], signal.SIGKILL)
    code, _, rest = proc.finish(timeout=300)
    assert code == 2, rest
    assert "Traceback" not in rest and f"worker process (pid {lanes[0]})" in rest
    no_process_left(proc.pid)
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert f"kerastrain resume {run_dir}" in rest
    record = info(run_dir)
    assert record["status"] == "failed" and "ended without reporting" in record["error"]

    done = cli("resume", run_dir, "--json")  # here, where TensorFlow is loaded already
    assert done.exit_code == 0, done.output
    assert info(run_dir)["status"] == "completed"
    for fold in ("0-0", "0-1", "0-2"):
        assert epochs(run_dir / "folds" / fold / "history.csv") == list(
            range(1, FOLD_EPOCHS + 1)), fold

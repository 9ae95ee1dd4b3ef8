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
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import iris_config, write_config

KERASTRAIN = [sys.executable, "-m", "kerastrain"]
STOPS = {"ctrl-c": lambda proc: os.killpg(proc.pid, signal.SIGINT),
         "sigterm": lambda proc: proc.send_signal(signal.SIGTERM)}


def _run(*args: object, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([*KERASTRAIN, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _start(*args: object) -> subprocess.Popen:
    """The command in a session (and process group) of its own, as a terminal runs it."""
    return subprocess.Popen([*KERASTRAIN, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(proc: subprocess.Popen, *texts: str, limit_s: float = 300) -> None:
    """Read the progress lines (one per epoch off a terminal) until each text was seen."""
    deadline, waiting = time.monotonic() + limit_s, set(texts)
    for line in proc.stderr:
        waiting = {t for t in waiting if t not in line}
        if not waiting:
            return
        assert time.monotonic() < deadline, f"no {waiting} in time"
    pytest.fail(f"the process ended before {waiting}: exit {proc.wait()}")


def _group(pgid: int) -> list[str]:
    """The live processes of a process group (from /proc; zombies are not running)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
        state, _, group = rest.split()[:3]
        if int(group) == pgid and state != "Z":
            found.append(f"{stat.parent.name} {name} {state}")
    return found


def _no_process_left(pgid: int, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while (left := _group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {left}"


def _manifest(sweep_dir: Path) -> dict[str, dict[str, str]]:
    with open(sweep_dir / "manifest.csv", newline="") as handle:
        return {r["trial"]: r for r in csv.DictReader(handle)}


def _info(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())


def _epochs(path: Path) -> list[int]:
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


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
        tmp_path: Path) -> None:
    config = _config(tmp_path, 40)
    args = ("sweep", config, "--grid", "training.epochs=40,8", "--jobs", "2")
    proc = _start(*args)
    _wait_for(proc, "t001 holdout epoch 3/40")
    run = _trial_run(tmp_path / "runs", "t001")
    worker = int((run / ".lock").read_text())  # the process training it holds its lock
    assert worker != proc.pid
    os.kill(worker, signal.SIGKILL)
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 1, rest
    assert "Traceback" not in rest
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = _manifest(sweep_dir)
    assert rows["t002"]["status"] == "completed"
    assert rows["t001"]["status"] == "failed" and rows["t001"]["run_dir"] == str(run)
    assert f"worker process (pid {worker}) ended without reporting" in rows["t001"]["error"]
    assert _info(run)["status"] == "running"  # as a kill -9 leaves a run
    _no_process_left(proc.pid)

    again = _run(*args, "--json")
    assert again.returncode == 0, again.stderr
    trials = {t["trial"]: t for t in json.loads(again.stdout.splitlines()[-1])["trials"]}
    assert [trials[t]["action"] for t in ("t001", "t002")] == ["resumed", "skipped"]
    info = _info(run)
    assert info["status"] == "completed" and info["resumes"][0]["was"] == "running"
    assert _epochs(run / "history.csv") == list(range(1, 41))


@pytest.mark.slow  # a sweep with two worker processes stopped, then its rerun
@pytest.mark.parametrize("how", list(STOPS))
def test_a_sweep_with_two_jobs_stops_cleanly_and_its_rerun_completes_it(
        tmp_path: Path, how: str) -> None:
    config = _config(tmp_path, 400)  # long enough (a few seconds) to be stopped midway
    args = ("sweep", config, "--grid", "compile.optimizer.learning_rate=0.01,0.02",
            "--jobs", "2")
    proc = _start(*args)
    _wait_for(proc, "t001 holdout epoch 2/400", "t002 holdout epoch 2/400")
    STOPS[how](proc)
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest and "Run the same command again" in rest
    _no_process_left(proc.pid)
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = _manifest(sweep_dir)
    assert [rows[t]["status"] for t in ("t001", "t002")] == ["interrupted"] * 2
    for row in rows.values():
        assert _info(row["run_dir"])["status"] == "interrupted"
        assert len(_epochs(Path(row["run_dir"]) / "history.csv")) >= 2  # epochs kept

    again = _run(*args, "--json")
    assert again.returncode == 0, again.stderr
    trials = json.loads(again.stdout.splitlines()[-1])["trials"]
    assert [(t["status"], t["action"]) for t in trials] == [("completed", "resumed")] * 2
    for row in rows.values():
        assert _epochs(Path(row["run_dir"]) / "history.csv") == list(range(1, 401))


@pytest.mark.slow  # a 3-fold fit in two worker processes stopped, then resumed
@pytest.mark.parametrize("how", list(STOPS))
def test_a_fit_with_fold_workers_stops_cleanly_and_resumes(tmp_path: Path, how: str) -> None:
    config = _config(tmp_path, 200, runtime={"workers": 2},
                     validation={"scheme": "kfold", "n_splits": 3, "test_split": 0.2})
    proc = _start("fit", config)  # the parent trains 0-0 first, its worker 0-2
    _wait_for(proc, "fold 0-0 epoch 2/200", "fold 0-2 epoch 2/200")
    STOPS[how](proc)
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest
    _no_process_left(proc.pid)
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert f"kerastrain resume {run}" in rest
    assert _info(run)["status"] == "interrupted"

    done = _run("resume", run, "--json")
    assert done.returncode == 0, done.stderr
    assert _info(run)["status"] == "completed"
    for fold in ("0-0", "0-1", "0-2"):  # every epoch once, in order
        assert _epochs(run / "folds" / fold / "history.csv") == list(range(1, 201)), fold


def _workers(pid: int) -> list[int]:
    """The worker processes of `pid`: its children but multiprocessing's resource tracker
    (started with spawned workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == pid and \
                b"resource_tracker" not in command:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow  # a 3-fold fit in the parent and a worker, the worker killed, then resumed
def test_a_killed_fold_worker_fails_the_run_resumably(tmp_path: Path) -> None:
    config = _config(tmp_path, 400, runtime={"workers": 2},
                     validation={"scheme": "kfold", "n_splits": 3, "test_split": 0.2})
    proc = _start("fit", config)  # the parent trains 0-0 first, its worker 0-2
    _wait_for(proc, "fold 0-0 epoch 3/400", "fold 0-2 epoch 3/400")
    workers = _workers(proc.pid)
    assert len(workers) == 1, workers  # the other lane is the parent itself
    os.kill(workers[0], signal.SIGKILL)
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 2, rest
    assert "Traceback" not in rest and f"worker process (pid {workers[0]})" in rest
    _no_process_left(proc.pid)
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert f"kerastrain resume {run}" in rest
    info = _info(run)
    assert info["status"] == "failed" and "ended without reporting" in info["error"]

    done = _run("resume", run, "--json")
    assert done.returncode == 0, done.stderr
    assert _info(run)["status"] == "completed"
    for fold in ("0-0", "0-1", "0-2"):
        assert _epochs(run / "folds" / fold / "history.csv") == list(range(1, 401)), fold

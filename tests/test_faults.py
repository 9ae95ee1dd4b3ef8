"""Nothing a crash does loses work: kill -9 at a random epoch then `resume`, SIGTERM as
Ctrl-C, the run lock, a diverging loss, and many fits into one runs directory at once.
Each runs the real command line in its own processes."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import iris_config, write_config
from kerastrain.rundir import RunDir

KERASTRAIN = [sys.executable, "-m", "kerastrain"]


def _run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*KERASTRAIN, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _start(*args: object) -> subprocess.Popen:
    return subprocess.Popen([*KERASTRAIN, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, text: str, limit_s: float = 240) -> None:
    """Read the process's progress lines (one per epoch off a terminal) until `text`."""
    deadline = time.monotonic() + limit_s
    for line in proc.stderr:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no {text!r} in time"
    pytest.fail(f"the process ended before {text!r}: exit {proc.wait()}")


def _epochs(path: Path) -> list[int]:
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def _config(tmp_path: Path, scheme: str, epochs: int, **output) -> Path:
    config = iris_config(tmp_path / "runs")
    config["training"] = {"epochs": epochs, "batch_size": 8}
    if scheme == "kfold":
        config["validation"] = {"scheme": "kfold", "n_splits": 3, "test_split": 0.2}
    config["output"].update(plots=False, **output)
    return write_config(tmp_path / "config.yaml", config)


@pytest.mark.slow  # each: a fit killed by SIGKILL, then resumed, in fresh processes
@pytest.mark.parametrize("scheme, seed", [("holdout", 1), ("holdout", 2), ("kfold", 3),
                                          ("kfold", 4)])
def test_kill_9_at_a_random_epoch_then_resume_completes(tmp_path: Path, scheme: str,
                                                       seed: int) -> None:
    rng = random.Random(seed)
    epochs = 40
    interval = rng.choice([0.0, 0.3, 5.0])
    path = _config(tmp_path, scheme, epochs, backup_interval_s=interval)
    label = "holdout" if scheme == "holdout" else f"fold 0-{rng.randrange(3)}"
    at = rng.randrange(2, epochs - 5)
    proc = _start("fit", path)
    _wait_for(proc, f"{label} epoch {at}/{epochs}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    run = _only_run(tmp_path / "runs")
    assert json.loads((run / "run.json").read_text())["status"] == "running"

    done = _run("resume", run, "--force", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed", info
    places = [run] if scheme == "holdout" else [run / "folds" / f"0-{i}" for i in range(3)]
    for place in places:  # every epoch once, in order
        assert _epochs(place / "history.csv") == list(range(1, epochs + 1)), place
    if scheme == "kfold":
        assert _epochs(run / "history.csv") == list(range(1, info["refit"]["epochs"] + 1))
    assert not list(run.rglob("backup"))
    assert _run("evaluate", run, "--json").returncode == 0  # model.keras loads


@pytest.mark.slow  # a fit stopped by SIGTERM, then resumed
def test_sigterm_is_ctrl_c_recorded_and_resumable(tmp_path: Path) -> None:
    path = _config(tmp_path, "holdout", 60)
    proc = _start("fit", path)
    _wait_for(proc, "holdout epoch 3/60")
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130
    run = _only_run(tmp_path / "runs")
    assert f"kerastrain resume {run}" in rest and "Traceback" not in rest
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted"
    kept = _epochs(run / "history.csv")
    assert kept == list(range(1, len(kept) + 1)) and len(kept) >= 3  # every finished epoch
    done = _run("resume", run, "--json")
    assert done.returncode == 0, done.stderr
    assert _epochs(run / "history.csv") == list(range(1, 61))


def test_a_run_being_trained_is_locked_and_a_dead_process_holds_nothing(
        cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_config(run / "config.yaml", iris_config(tmp_path / "runs"))
    (run / "run.json").write_text(json.dumps({"status": "running"}))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom pathlib import Path\n"
         "from kerastrain.rundir import RunDir\n"
         f"lock = RunDir(Path({str(run)!r})).lock()\nlock.__enter__()\n"
         "print('locked', flush=True)\ntime.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = cli("resume", run, "--force")
        assert refused.exit_code == 2
        assert f"another kerastrain process (pid {holder.pid}) is training this run" in \
            refused.stderr
    finally:
        holder.kill()
        holder.wait()
    with RunDir(run).lock():  # free again: its holder died without letting go
        pass
    again = cli("resume", run)  # still refused without --force, for its status alone
    assert again.exit_code == 2 and "--force" in again.stderr


@pytest.mark.slow  # eight processes, each importing TensorFlow, on the same runs folder
def test_eight_fits_at_once_into_one_runs_directory(tmp_path: Path) -> None:
    path = _config(tmp_path, "holdout", 2)
    procs = [_start("fit", path, "--quiet") for _ in range(8)]
    deadline = time.monotonic() + 300
    while not (tmp_path / "runs").is_dir() or not any((tmp_path / "runs").iterdir()):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.2)
    (tmp_path / "runs" / "notes.txt").write_text("a stray file")  # and a foreign folder:
    (tmp_path / "runs" / "scratch").mkdir()
    listed = _run("runs", tmp_path / "runs", "--json")  # while they start and train
    assert listed.returncode == 0, listed.stderr
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1][-500:] for o in outs]
    made = {o[0].strip() for o in outs}
    assert len(made) == 8
    assert {str(p) for p in (tmp_path / "runs").iterdir() if p.name.startswith("iris")} == made
    for run in made:
        assert json.loads((Path(run) / "run.json").read_text())["status"] == "completed"
        assert RunDir(Path(run)).trained
    runs = json.loads(_run("runs", tmp_path / "runs", "--json").stdout)["runs"]
    assert sorted(r["run_dir"] for r in runs) == sorted(made)


def test_a_diverging_loss_fails_the_run_at_that_epoch(cli, tmp_path: Path) -> None:
    config = iris_config(tmp_path / "runs")
    config["data"] = {"source": {"type": "sklearn", "name": "diabetes"}}
    config["data"]["preprocessing"] = {"numeric": "none"}
    config["model"] = {"layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                                  {"type": "Dense", "units": 1}]}
    config["compile"] = {"optimizer": {"type": "SGD", "learning_rate": 10.0}, "loss": "mse"}
    config["training"] = {"epochs": 20, "batch_size": 16}
    result = cli("fit", write_config(tmp_path / "c.yaml", config))
    assert result.exit_code == 2, result.output
    assert "training diverged" in result.stderr and "learning_rate" in result.stderr
    assert "Traceback" not in result.stderr
    run = _only_run(tmp_path / "runs")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "at epoch" in info["error"]
    epoch = int(info["error"].split("at epoch ")[1].split(":")[0])
    if epoch > 1:  # the epochs before stay, and so does their backup
        assert _epochs(run / "history.csv") == list(range(1, epoch))
        assert (run / "checkpoints" / "backup" / "backup.npz").is_file()

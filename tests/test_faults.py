"""Nothing a crash does loses work: kill -9 at a random epoch then `resume`, SIGTERM as
Ctrl-C, the run lock, a diverging loss, and many fits into one runs directory at once.
Each runs the real command line in its own processes."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli, iris_config, write_config
from kerastrain.rundir import RunDir, read_history
from processes import add_pace, epochs, info, no_process_left, pace_env, run, workers

RTOL, ATOL = 1e-5, 1e-6  # float round-off between processes, as in test_resume.py


def _only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def _config(tmp_path: Path, scheme: str, epochs: int, paced: bool = False,
            **output) -> Path:
    config = iris_config(tmp_path / "runs")
    if paced:
        add_pace(config, tmp_path)
    config["training"] = {"epochs": epochs, "batch_size": 8}
    if scheme == "kfold":
        config["validation"] = {"scheme": "kfold", "n_splits": 3, "test_split": 0.2}
        config["runtime"] = {"workers": 2}  # the parent trains one fold, a worker another
    config["output"].update(plots=False, **output)
    return write_config(tmp_path / "config.yaml", config)


def _backup_epoch(place: Path) -> int:
    """The epochs `place`'s backup holds, read as resume reads it (a torn file fails)."""
    with np.load(place / "checkpoints" / "backup" / "backup.npz") as data:
        return int(json.loads(str(data["state"]))["epoch"])


def _saved_by(lines: list[tuple[float, str]], label: str,
              interval: float) -> tuple[int, int]:
    """From the progress lines of `label` (each written after its epoch's backup step):
    the last epoch a backup must hold at the kill, and the last epoch reported. With an
    interval of 0 every epoch reported was written before it was reported. Else the
    writer writes at the first epoch end `interval` after its previous write: every epoch
    that ended `interval` before the last reported one did was written (the times are
    when the lines arrived: a margin for the pipe's delays)."""
    seen = [(t, int(line.split(" epoch ")[1].split("/")[0])) for t, line in lines
            if line.startswith(f"{label} epoch ")]
    assert seen, f"no epoch of {label} reported"
    if interval == 0:
        return seen[-1][1], seen[-1][1]
    recent = seen[-10:]
    margin = 0.5 + 2 * max([b - a for (a, _), (b, _) in zip(recent, recent[1:],
                                                             strict=False)] or [1.0])
    due = [e for t, e in seen if t <= seen[-1][0] - interval - margin]
    return (max(due) if due else 0), seen[-1][1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory):
    """`reference(scheme)`: the run an uninterrupted fit of the kill test's config makes
    (one per scheme, made once): what a resumed run must equal."""
    made: dict[str, Path] = {}

    def reference(scheme: str) -> Path:
        if scheme not in made:
            tmp = tmp_path_factory.mktemp(f"whole-{scheme}")
            done = Cli()("fit", _config(tmp, scheme, KILL_EPOCHS, paced=True), "--json",
                         "--set", "runtime.workers=1")  # folds side by side train alike
            assert done.exit_code == 0, done.output
            made[scheme] = Path(json.loads(done.stdout)["run_dir"])
        return made[scheme]

    return reference


def assert_same_training(got: Path, want: Path) -> None:
    """Two runs (or folds) trained alike: every epoch's values and the scores agree."""
    have, expected = read_history(got / "history.csv"), read_history(want / "history.csv")
    assert list(have) == list(expected)
    for key in expected:
        np.testing.assert_allclose(have[key], expected[key], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{got}: {key}")
    scores, wanted = (json.loads((d / "metrics.json").read_text()) for d in (got, want))
    assert list(scores) == list(wanted)
    for split in wanted:
        for name in wanted[split]:
            assert scores[split][name] == pytest.approx(wanted[split][name], rel=RTOL,
                                                        abs=ATOL), f"{got}: {split} {name}"


# Epochs enough for the throttled backup to be written before the kill, on a fast CPU too:
# the killed fit is paced (at least 0.1 s an epoch), and is killed by epoch 15 plus the
# bound's wait (about 1 s); the resume and the reference are not paced.
KILL_EPOCHS = 40


@pytest.mark.slow  # each: a fit killed by SIGKILL, then resumed, in fresh processes
@pytest.mark.parametrize("scheme, interval, seed", [
    ("holdout", 0.0, 1), ("holdout", 0.3, 2), ("kfold", 0.3, 3)])
def test_kill_9_at_a_random_epoch_then_resume_completes(
        cli, tmp_path: Path, start, uninterrupted, scheme: str, interval: float,
        seed: int) -> None:
    """kill -9 of the command (its workers are left to die with it) at a random epoch,
    with every epoch backed up or at most every `interval` seconds; `resume --force`
    goes on from no earlier than the backup had to hold, and ends as the uninterrupted
    run does."""
    rng = random.Random(seed)
    path = _config(tmp_path, scheme, KILL_EPOCHS, paced=True, backup_interval_s=interval)
    labels = ["holdout"] if scheme == "holdout" else ["fold 0-0", "fold 0-2"]  # two lanes
    at = rng.randrange(3, 15)
    proc = start("fit", path, env=pace_env())
    proc.wait_for(*(f"{label} epoch {at}/{KILL_EPOCHS}" for label in labels))
    while any(_saved_by(proc.lines, label, interval)[0] < 1
              for label in labels):  # until the bound says something of each lane
        proc.next_line()
    lanes = workers(proc.pid)
    assert len(lanes) == (0 if scheme == "holdout" else 1), lanes
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.finish(timeout=60)[0] == -signal.SIGKILL  # (every line it wrote, read)
    no_process_left(proc.pid)  # the fold worker died with its parent
    run_dir = _only_run(tmp_path / "runs")
    assert info(run_dir)["status"] == "running"

    places = {"holdout": run_dir} if scheme == "holdout" else {
        f"fold {name}": run_dir / "folds" / name for name in ("0-0", "0-2")}
    for label, place in places.items():
        due, last = _saved_by(proc.lines, label, interval)
        assert due >= (at if interval == 0 else 1), (label, due)  # the bound bites
        if (place / "metrics.json").exists():  # finished before the kill
            continue
        assert due <= _backup_epoch(place) <= last + 1, (label, due, last)

    done = cli("resume", run_dir, "--force", "--json")  # here: TensorFlow is loaded already
    assert done.exit_code == 0, done.output
    record = info(run_dir)
    assert record["status"] == "completed", record
    (resumed,) = record["resumes"]
    first_label = "holdout" if scheme == "holdout" else "fold 0-0"
    if resumed["fold"] == first_label.removeprefix("fold "):
        due, _ = _saved_by(proc.lines, first_label, interval)
        assert resumed["epochs_done"] >= due, (resumed, due)
    assert not list(run_dir.rglob("backup"))

    whole = uninterrupted(scheme)
    assert_same_training(run_dir, whole)
    if scheme == "kfold":
        for name in ("0-0", "0-1", "0-2"):
            assert_same_training(run_dir / "folds" / name, whole / "folds" / name)
    assert epochs(run_dir / "history.csv") == list(range(1, len(epochs(
        whole / "history.csv")) + 1))
    assert cli("evaluate", run_dir, "--json").exit_code == 0  # model.keras loads


@pytest.mark.slow  # a fit stopped by SIGTERM, then resumed
def test_sigterm_is_ctrl_c_recorded_and_resumable(cli, tmp_path: Path, start,
                                                 uninterrupted) -> None:
    path = _config(tmp_path, "holdout", KILL_EPOCHS, paced=True)
    proc = start("fit", path, env=pace_env())
    proc.wait_for(f"holdout epoch 3/{KILL_EPOCHS}")
    proc.proc.send_signal(signal.SIGTERM)
    code, _, rest = proc.finish(timeout=120)
    assert code == 130
    run_dir = _only_run(tmp_path / "runs")
    assert f"kerastrain resume {run_dir}" in rest and "Traceback" not in rest
    record = info(run_dir)
    assert record["status"] == "interrupted"
    kept = epochs(run_dir / "history.csv")
    assert kept == list(range(1, len(kept) + 1)) and len(kept) >= 3  # every finished epoch
    assert _backup_epoch(run_dir) == len(kept)  # written at once, whatever the interval
    done = cli("resume", run_dir, "--json")
    assert done.exit_code == 0, done.output
    assert info(run_dir)["resumes"][0]["epochs_done"] == len(kept)
    assert_same_training(run_dir, uninterrupted("holdout"))


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
def test_eight_fits_at_once_into_one_runs_directory(tmp_path: Path, start) -> None:
    path = _config(tmp_path, "holdout", 2)
    procs = [start("fit", path, "--quiet") for _ in range(8)]
    deadline = time.monotonic() + 300
    while not (tmp_path / "runs").is_dir() or not any((tmp_path / "runs").iterdir()):
        assert time.monotonic() < deadline and all(p.proc.poll() is None for p in procs)
        time.sleep(0.2)
    (tmp_path / "runs" / "notes.txt").write_text("a stray file")  # and a foreign folder:
    (tmp_path / "runs" / "scratch").mkdir()
    listed = run("runs", tmp_path / "runs", "--json")  # while they start and train
    assert listed.returncode == 0, listed.stderr
    outs = [p.finish(timeout=600) for p in procs]
    assert [o[0] for o in outs] == [0] * 8, [o[2][-500:] for o in outs]
    made = {o[1].strip() for o in outs}
    assert len(made) == 8
    assert {str(p) for p in (tmp_path / "runs").iterdir() if p.name.startswith("iris")} == made
    for made_dir in made:
        assert info(made_dir)["status"] == "completed"
        assert RunDir(Path(made_dir)).trained
    runs = json.loads(run("runs", tmp_path / "runs", "--json").stdout)["runs"]
    assert sorted(r["run_dir"] for r in runs) == sorted(made)


def test_a_diverging_loss_fails_the_run_at_that_epoch(cli, tmp_path: Path) -> None:
    """A learning rate that jumps from 0.01 to 1000 at step 60 (in the 4th epoch of 18
    steps): the run fails at that epoch, and the three before stay with their backup."""
    config = iris_config(tmp_path / "runs")
    config["data"] = {"source": {"type": "sklearn", "name": "diabetes"}}
    # the raw target (a learned-standardized one would make SGD's steps std^2 larger)
    config["data"]["preprocessing"] = {"numeric": "none", "scale_target": "none"}
    config["model"] = {"layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                                  {"type": "Dense", "units": 1}]}
    jump = {"type": "PiecewiseConstantDecay", "boundaries": [60], "values": [0.01, 1000.0]}
    config["compile"] = {"optimizer": {"type": "SGD", "learning_rate": jump}, "loss": "mse"}
    config["training"] = {"epochs": 20, "batch_size": 16}
    result = cli("fit", write_config(tmp_path / "c.yaml", config))
    assert result.exit_code == 2, result.output
    assert "training diverged" in result.stderr and "learning_rate" in result.stderr
    assert "Traceback" not in result.stderr
    run_dir = _only_run(tmp_path / "runs")
    record = info(run_dir)
    (fold,) = json.loads((run_dir / "splits.json").read_text())["folds"]
    steps = math.ceil(len(fold["train"]) / 16)
    expected = 60 // steps + 1
    assert expected >= 3  # epochs before it to keep
    assert record["status"] == "failed" and f"at epoch {expected}:" in record["error"]
    assert epochs(run_dir / "history.csv") == list(range(1, expected))  # the epochs before
    assert _backup_epoch(run_dir) == expected - 1  # and their backup
    assert not (run_dir / "model.keras").exists()

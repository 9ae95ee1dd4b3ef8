"""The worker pool that trains folds (and sweep trials) side by side: results, errors and
progress come back to the parent; a cross-validation run made by two workers is the run
one process makes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import iris_config, write_config
from kerastrain.errors import DataError
from kerastrain.training.pool import Outcome, WorkerDied, WorkerFailed, WorkerPool, run_in_workers
from kerastrain.training.progress import Progress


class Recorded(Progress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict) -> None:
        self.events.append(("epoch_end", label, epoch, epochs, logs))


def double_in_a_worker(item: int, progress: Progress) -> tuple[int, int]:
    progress.note(f"item {item}")
    progress.epoch_end(f"item {item}", 1, 1, {"loss": float(item)})
    if item == 3:
        raise DataError(f"item {item}: a user's mistake")
    if item == 4:
        raise ZeroDivisionError("a bug")
    return item * 2, os.getpid()


def test_items_run_in_other_processes_and_everything_comes_back() -> None:
    progress = Recorded()
    outcomes = sorted(run_in_workers(double_in_a_worker, [0, 1, 2, 3, 4], 2, progress,
                                     warm=False), key=lambda o: o.index)
    assert [o.index for o in outcomes] == [0, 1, 2, 3, 4]
    assert [o.value[0] for o in outcomes[:3]] == [0, 2, 4]
    pids = {o.value[1] for o in outcomes[:3]}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert isinstance(outcomes[3].error, DataError)
    assert str(outcomes[3].error) == "item 3: a user's mistake"
    assert isinstance(outcomes[4].error, WorkerFailed)
    assert "ZeroDivisionError: a bug" in str(outcomes[4].error)
    assert "Traceback" in str(outcomes[4].error)  # the worker's own trace, for the report
    assert sorted(e[1] for e in progress.events if e[0] == "note") == \
        [f"item {i}" for i in range(5)]
    assert ("epoch_end", "item 2", 1, 1, {"loss": 2.0}) in progress.events


def test_one_worker_runs_in_this_process() -> None:
    outcomes = list(run_in_workers(double_in_a_worker, [5, 3], 1, Recorded()))
    assert outcomes[0] == Outcome(0, value=(10, os.getpid()))
    assert isinstance(outcomes[1].error, DataError)


def die_on_odd(item: int, progress: Progress) -> tuple[int, int]:
    """Items 1 and 3 kill their worker, as kill -9 or the OOM killer would."""
    progress.note(f"item {item}")
    if item % 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return item, os.getpid()


def test_a_worker_that_dies_fails_only_its_item_and_is_replaced() -> None:
    progress = Recorded()
    with WorkerPool(2, warm=False) as pool:
        first = {p.pid for p in pool.procs}
        outcomes = sorted(pool.run(die_on_odd, [1, 3, 0, 2, 4, 5, 6], progress),
                          key=lambda o: o.index)
        assert pool.started in (4, 5)  # the first two replaced; item 5's, if work waited
    assert [o.index for o in outcomes] == list(range(7))
    for lost in (outcomes[0], outcomes[1], outcomes[5]):
        assert isinstance(lost.error, WorkerDied) and lost.value is None
        assert "ended without reporting (exit code -9)" in str(lost.error)
    done = [o for o in outcomes if o.error is None]
    assert [o.value[0] for o in done] == [0, 2, 4, 6]
    assert not first & {o.value[1] for o in done}  # replacements did the work
    assert sorted(e[1] for e in progress.events) == [f"item {i}" for i in range(7)]


def test_every_worker_dying_ends_every_item_without_hanging() -> None:
    outcomes = list(run_in_workers(die_on_odd, [1, 3, 5, 7, 9], 2, Recorded(), warm=False))
    assert sorted(o.index for o in outcomes) == [0, 1, 2, 3, 4]
    assert all(isinstance(o.error, WorkerDied) for o in outcomes)


def test_a_worker_dead_before_the_work_starts_is_replaced() -> None:
    with WorkerPool(2, warm=False) as pool:
        first = pool.procs[0]
        os.kill(first.pid, signal.SIGKILL)
        first.join()
        outcomes = list(pool.run(die_on_odd, [0, 2, 4], Recorded()))
        assert sorted(o.value[0] for o in outcomes) == [0, 2, 4]
        assert first not in pool.procs and len(pool.procs) == 2
    assert not pool.procs


def clean_up_when_interrupted(path: str, progress: Progress) -> None:
    try:
        progress.note(str(os.getpid()))  # Ctrl-C may come before note returns
        time.sleep(60)
    except KeyboardInterrupt:
        time.sleep(1.0)  # writing its backup, recording `interrupted`
        Path(path).write_text("kept")
        raise


class CtrlC(Progress):
    """Once every item has started: Ctrl-C as a terminal sends it, to the workers and to
    this process (which then passes it on to the workers as well)."""

    def __init__(self, items: int) -> None:
        self.pids: list[int] = []
        self.items = items

    def note(self, text: str) -> None:
        self.pids.append(int(text))
        if len(self.pids) == self.items:
            for pid in self.pids:
                os.kill(pid, signal.SIGINT)
            raise KeyboardInterrupt


def test_ctrl_c_reaches_each_worker_once_and_its_clean_up_finishes(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"backup{i}") for i in range(2)]
    progress = CtrlC(len(paths))
    with pytest.raises(KeyboardInterrupt):
        list(run_in_workers(clean_up_when_interrupted, paths, 2, progress, warm=False))
    assert [Path(p).read_text() for p in paths] == ["kept", "kept"]
    for pid in progress.pids:  # ended, and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_an_error_before_any_work_ends_the_idle_workers_at_once() -> None:
    """An error in the parent before it hands out work (a config the checks refuse): its
    workers hold nothing to save and end at once, even one that cannot answer Ctrl-C
    (here stopped; in life, one still loading TensorFlow, whose exit can hang a minute)."""
    began = time.monotonic()
    with pytest.raises(ValueError, match="refused"):
        with WorkerPool(2, warm=False) as pool:
            procs = pool.procs
            os.kill(procs[0].pid, signal.SIGSTOP)
            raise ValueError("refused by the checks")
    assert time.monotonic() - began < 20  # not the minute interrupted workers may take
    assert not [p for p in procs if p.is_alive()]


@pytest.mark.slow  # two 3-fold runs, one serial, one in two worker processes
def test_folds_side_by_side_make_the_serial_run(cli, tmp_path: Path) -> None:
    made = {}
    for workers in (1, 2):
        config = iris_config(tmp_path / f"runs{workers}")
        config["training"] = {"epochs": 4, "batch_size": 16}
        config["validation"] = {"scheme": "kfold", "n_splits": 3, "test_split": 0.2}
        config["runtime"] = {"workers": workers}
        config["output"]["plots"] = False
        result = cli("fit", write_config(tmp_path / f"c{workers}.yaml", config), "--json")
        assert result.exit_code == 0, result.output
        made[workers] = Path(json.loads(result.stdout)["run_dir"])
    serial, parallel = made[1], made[2]
    assert json.loads((parallel / "run.json").read_text())["workers"] == 2
    assert json.loads((serial / "run.json").read_text())["workers"] == 1
    for name in ("cv_summary.json", "splits.json", "metrics.json", "cv_history.csv"):
        assert (serial / name).read_text() == (parallel / name).read_text(), name
    for fold in ("0-0", "0-1", "0-2"):
        for name in ("history.csv", "metrics.json", "preprocessing.json"):
            assert (serial / "folds" / fold / name).read_text() == \
                (parallel / "folds" / fold / name).read_text(), (fold, name)


def test_the_parent_is_a_lane_of_its_own() -> None:
    progress = Recorded()
    with WorkerPool(2, warm=False, parent_lane=True) as pool:
        assert len(pool.procs) == 1
        outcomes = sorted(pool.run(double_in_a_worker, [0, 1, 2, 5, 6, 7], progress,
                                   local=double_in_a_worker), key=lambda o: o.index)
    assert [o.value[0] for o in outcomes] == [0, 2, 4, 10, 12, 14]
    pids = {o.value[1] for o in outcomes}
    assert os.getpid() in pids and len(pids) == 2  # this process and its one worker
    assert sorted(e[1] for e in progress.events if e[0] == "note") == \
        [f"item {i}" for i in (0, 1, 2, 5, 6, 7)]


def test_a_worker_holding_a_second_item_dies_and_only_the_started_one_fails() -> None:
    # The worker takes from the back: item 1 (it dies there) and item 4 (never started),
    # which the parent or a new worker then runs.
    with WorkerPool(2, warm=False, parent_lane=True) as pool:
        outcomes = sorted(pool.run(die_on_odd, [0, 2, 4, 1], Recorded(), local=die_on_odd),
                          key=lambda o: o.index)
    assert [o.value[0] for o in outcomes[:3]] == [0, 2, 4]
    assert isinstance(outcomes[3].error, WorkerDied)

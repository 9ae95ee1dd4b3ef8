"""The real command line in processes of its own, for the tests that stop, kill and resume
it: each command in a session (and process group) of its own, as a terminal runs it; its
progress lines read on a thread, with the time each arrived, so that every wait has a
deadline even when the process goes silent; and the processes a group leaves behind."""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

KERASTRAIN = [sys.executable, "-m", "kerastrain"]


def run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*KERASTRAIN, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


class Started:
    """`kerastrain ARGS` running in a session of its own. `lines` holds (arrival time,
    line) of everything it wrote on stderr so far (one progress line per epoch off a
    terminal)."""

    def __init__(self, *args: object, env: dict[str, str] | None = None):
        self._stdout = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([*KERASTRAIN, *map(str, args)], stdout=self._stdout,
                                     stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, env=env)
        self.pid = self.proc.pid
        self.lines: list[tuple[float, str]] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line))
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, *texts: str, limit_s: float = 240) -> None:
        """Until each text was seen in a line (since the start); fails at the deadline even
        if the process says nothing more."""
        deadline = time.monotonic() + limit_s
        waiting = {t for t in texts if not any(t in line for _, line in list(self.lines))}
        while waiting:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {sorted(waiting)} within {limit_s} s")
            if line is None:
                pytest.fail(f"the process ended before {sorted(waiting)}: exit "
                            f"{self.proc.wait()}")
            waiting = {t for t in waiting if t not in line}

    def next_line(self, limit_s: float = 240) -> str:
        """The next line it writes (fails at the deadline, or if it ends)."""
        try:
            line = self._queue.get(timeout=limit_s)
        except queue.Empty:
            pytest.fail(f"no line within {limit_s} s")
        if line is None:
            pytest.fail(f"the process ended: exit {self.proc.wait()}")
        return line

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Its exit code, stdout and stderr once it ends (killed at the deadline)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.pid)
            pytest.fail(f"the process did not end within {timeout} s")
        self._reader.join(timeout=30)
        self._stdout.seek(0)
        return code, self._stdout.read(), "".join(line for _, line in self.lines)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group(pgid: int) -> list[str]:
    """The live processes of a process group (from /proc; zombies are not running)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
        state, _, pgrp = rest.split()[:3]
        if int(pgrp) == pgid and state != "Z":
            found.append(f"{stat.parent.name} {name} {state}")
    return found


def no_process_left(pgid: int, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while (left := group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {left}"


def workers(pid: int) -> list[int]:
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


# A callback that waits PACE_ENV seconds after each training step, in a process started
# with that variable (a fit or sweep to be killed or stopped, `pace_env()`) and nowhere
# else: its epochs last long enough for a signal to land mid-run on a fast CPU too, and the
# runs of the same config that are not stopped (the resume, the rerun, an uninterrupted
# reference) train at full speed. It changes no value: every run of the config trains alike.
PACE_ENV = "KT_TEST_PACE_S"
_PACE = f"""
import os, time
from kerastrain import _keras
from kerastrain.registry import register

keras = _keras.keras()
PAUSE = float(os.environ.get({PACE_ENV!r}) or 0)


@register("callbacks")
class Pace(keras.callbacks.Callback):
    def get_config(self):
        return dict()

    def on_train_batch_end(self, batch, logs=None):
        if PAUSE:
            time.sleep(PAUSE)
"""


def add_pace(config: dict, folder: Path) -> None:
    """`config` (to be written into `folder`) with the Pace callback, its plugin beside it."""
    config.update(plugins=["kt_pace"], callbacks=[{"type": "Pace"}])
    (folder / "kt_pace.py").write_text(_PACE)


def pace_env() -> dict[str, str]:
    """The environment of a paced process: 0.01 s a step, so an epoch of 10 steps (8 rows
    each, iris) lasts at least 0.1 s."""
    return {**os.environ, PACE_ENV: "0.01"}


def epochs(path: Path) -> list[int]:
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def info(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())

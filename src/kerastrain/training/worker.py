"""The worker side of `kerastrain.training.pool`: a worker process's life (share the cores,
load TensorFlow, run the tasks it is handed), its `Progress` that sends every event to the
parent, and what an item's ending looks like on the way back (`Outcome`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from kerastrain.errors import UserError
from kerastrain.training.progress import Progress

_PR_SET_PDEATHSIG = 1


@dataclass
class Outcome:
    """How one item ended: its index in the items given, and its value or its error."""

    index: int
    value: Any = None
    error: BaseException | None = None


class WorkerFailed(RuntimeError):
    """An internal error inside a worker process; the message holds its traceback."""


class WorkerDied(UserError):
    """A worker process ended without reporting (kill -9, the out-of-memory killer): its
    item failed, through nothing in kerastrain's code, so no traceback (exit code 2)."""


def share_threads(threads: int) -> None:
    """Size TensorFlow's (and OpenMP's) thread pools to `threads`: TensorFlow reads these
    when it starts, in this process."""
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(threads)


class PipeProgress(Progress):
    """A worker's `Progress`: every event goes to the parent, which replays it."""

    def __init__(self, results: Any):
        self.results = results

    def _send(self, name: str, *args: Any) -> None:
        self.results.send(("event", (name, args)))

    def begin(self, total: int) -> None:
        """A worker's own work is part of the parent's total: not forwarded."""

    def end(self) -> None:
        """Not forwarded: the parent ends its display once."""

    def fold_begin(self, label: str, epochs: int, done: int = 0) -> None:
        self._send("fold_begin", label, epochs, done)

    def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        self._send("epoch_end", label, epoch, epochs, logs)

    def fold_end(self, label: str) -> None:
        self._send("fold_end", label)

    def warning(self, text: str) -> None:
        self._send("warning", text)

    def note(self, text: str) -> None:
        self._send("note", text)

    def trial_end(self, text: str) -> None:
        self._send("trial_end", text)


def _portable(exc: BaseException) -> BaseException:
    """The exception as the parent can receive it: itself if it pickles, else (an internal
    error) a `WorkerFailed` carrying its traceback."""
    if isinstance(exc, (UserError, KeyboardInterrupt)):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # an error type that does not pickle: keep its message
            return UserError(str(exc)) if isinstance(exc, UserError) else KeyboardInterrupt()
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return WorkerFailed(f"in a worker process: {type(exc).__name__}: {exc}\n{trace}")


def _die_with_parent() -> None:
    """Linux: a worker ends when its parent ends, even by kill -9, rather than train on
    orphaned (and keep the run's lock)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's exit still ends the pipes
        pass


def _interrupted_once(signum: int, frame: Any) -> None:
    """A worker's Ctrl-C: the terminal sends it to the whole process group and the parent
    passes it on, so a second one must not break the first one's cleanup (the backup,
    run.json's `interrupted`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _reading(tasks: Any) -> queue.Queue:
    """The tasks as they arrive, read by a thread of their own: the parent never waits to
    hand over the next one (a task holds the run's data, more than a pipe buffers) while
    this worker trains. None (the stop sign) also comes when the parent is gone."""
    inbox: queue.Queue = queue.Queue()

    def receive() -> None:
        try:
            while (task := tasks.recv()) is not None:
                inbox.put(task)
        except (EOFError, OSError):
            pass
        inbox.put(None)

    threading.Thread(target=receive, name="kerastrain-tasks", daemon=True).start()
    return inbox


def work(tasks: Any, results: Any, threads: int, warm: bool) -> None:
    """A worker's life: share the cores, load TensorFlow while the parent is busy (`warm`),
    then run the tasks it is handed until the stop sign (None). Interrupted while idle,
    or its parent gone, it leaves quietly."""
    signal.signal(signal.SIGINT, _interrupted_once)
    _die_with_parent()
    try:
        share_threads(threads)
        if warm:
            from kerastrain import _keras

            _keras.keras()
        progress = PipeProgress(results)
        inbox = _reading(tasks)
        while (task := inbox.get()) is not None:
            index, fn, item = task
            results.send(("start", index))  # from here on, the item is this worker's
            try:
                outcome = Outcome(index, value=fn(item, progress))
            except BaseException as exc:  # everything reaches the parent, Ctrl-C included
                outcome = Outcome(index, error=_portable(exc))
            results.send(("done", outcome))
            if isinstance(outcome.error, KeyboardInterrupt):
                break  # reported once; this worker leaves
    except (KeyboardInterrupt, EOFError, OSError):
        pass
    # Everything is sent: leave at once. An interpreter that has loaded TensorFlow can
    # hang in its shutdown (thread pools, atexit hooks) for a minute or more.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

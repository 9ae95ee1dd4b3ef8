"""Independent work side by side: the folds of one run, or the trials of a sweep, each in a
worker process of its own, with TensorFlow's thread pools sized so the workers share the
cores instead of fighting over them.

Workers start before the parent imports TensorFlow when they can (forked, they then
import it while the parent checks the config), otherwise they are spawned. A task is a
module-level function and picklable arguments; its progress events travel back through
a queue to the parent's `Progress`, so one display shows every worker. Ctrl-C (or a
SIGTERM the command line turns into one) interrupts every worker: each leaves its
backup, as a serial run would, and the parent raises `KeyboardInterrupt`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kerastrain.errors import UserError
from kerastrain.training.progress import Progress

_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1
_STOP_S = 60.0  # how long interrupted workers get to leave their backups


@dataclass
class Outcome:
    """How one item ended: its index in the items given, and its value or its error."""

    index: int
    value: Any = None
    error: BaseException | None = None


class WorkerFailed(RuntimeError):
    """An internal error inside a worker process; the message holds its traceback."""


class WorkerDied(RuntimeError):
    """A worker process ended without reporting (killed, out of memory)."""


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_threads(threads: int) -> None:
    """Size TensorFlow's (and OpenMP's) thread pools to `threads`: TensorFlow reads these
    when it starts, in this process."""
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(threads)


class QueueProgress(Progress):
    """A worker's `Progress`: every event goes to the parent, which replays it."""

    def __init__(self, results: Any):
        self.results = results

    def _send(self, name: str, *args: Any) -> None:
        self.results.put(("event", (name, args)))

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
    except (OSError, AttributeError):  # not Linux: the parent's exit still stops the queue
        pass


def _work(tasks: Any, results: Any, threads: int, warm: bool) -> None:
    """A worker's life: share the cores, load TensorFlow while the parent is busy (`warm`),
    then run tasks until the stop sign (None)."""
    _die_with_parent()
    share_threads(threads)
    if warm:
        from kerastrain import _keras

        _keras.keras()
    progress = QueueProgress(results)
    while True:
        task = tasks.get()
        if task is None:
            return
        index, fn, item = task
        results.put(("start", (index, os.getpid())))
        try:
            outcome = Outcome(index, value=fn(item, progress))
        except BaseException as exc:  # everything reaches the parent, Ctrl-C included
            outcome = Outcome(index, error=_portable(exc))
        if isinstance(outcome.error, KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # report once, then leave
            results.put(("done", outcome))
            return
        results.put(("done", outcome))


class WorkerPool:
    """Up to `workers` worker processes, started at once (`with WorkerPool(n) as pool`) so
    they are ready by the time there is work; `run` hands them items. With one worker
    (or none needed) everything runs in this process."""

    def __init__(self, workers: int, warm: bool = True):
        self.workers = max(1, int(workers))
        self.warm = warm  # load TensorFlow in the workers as they start
        self.procs: list[Any] = []
        self.tasks: Any = None
        self.results: Any = None

    def __enter__(self) -> WorkerPool:
        if self.workers > 1:
            self._start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _start(self) -> None:
        # Forking is safe while TensorFlow is not loaded here; after that, spawn.
        method = "spawn" if "tensorflow" in sys.modules else "fork"
        ctx = mp.get_context(method)
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        threads = max(1, cores() // self.workers)
        self.procs = [ctx.Process(target=_work, args=(self.tasks, self.results, threads,
                                                       self.warm),
                                  daemon=True, name=f"kerastrain-worker-{i}")
                      for i in range(self.workers)]
        for proc in self.procs:
            proc.start()

    def close(self) -> None:
        """Stop the workers (they finish the task at hand first)."""
        for _ in self.procs:
            self.tasks.put(None)
        for proc in self.procs:
            proc.join(timeout=_STOP_S)
            if proc.is_alive():
                proc.terminate()
        self.procs = []

    def _interrupt(self) -> None:
        """Ctrl-C for every worker (the terminal sends it to them too; a SIGTERM to this
        process does not), then wait for them to leave their backups."""
        for proc in self.procs:
            if proc.is_alive():
                try:
                    os.kill(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            proc.join(timeout=_STOP_S)
            if proc.is_alive():
                proc.kill()
        self.procs = []

    def run(self, fn: Callable[[Any, Progress], Any], items: list[Any],
            progress: Progress) -> Iterator[Outcome]:
        """`fn(item, progress)` for every item, in the workers; yields each `Outcome` as
        it ends (in this process, in order, when the pool has one worker)."""
        if not self.procs:
            for index, item in enumerate(items):
                try:
                    yield Outcome(index, value=fn(item, progress))
                except (KeyboardInterrupt, WorkerDied):
                    raise
                except Exception as exc:
                    yield Outcome(index, error=exc)
            return
        for index, item in enumerate(items):
            self.tasks.put((index, fn, item))
        try:
            yield from self._collect(len(items), progress)
        except BaseException:
            self._interrupt()
            raise

    def _collect(self, pending: int, progress: Progress) -> Iterator[Outcome]:
        running: dict[int, int] = {}  # item index -> worker pid
        while pending:
            try:
                kind, payload = self.results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = {p.pid for p in self.procs if not p.is_alive()}
                lost = [i for i, pid in running.items() if pid in dead]
                if lost:
                    raise WorkerDied(f"a worker process (pid {running[lost[0]]}) ended "
                                     "without reporting; was it killed, or out of memory?"
                                     ) from None
                continue
            if kind == "event":
                name, args = payload
                getattr(progress, name)(*args)
            elif kind == "start":
                index, pid = payload
                running[index] = pid
            else:
                running.pop(payload.index, None)
                pending -= 1
                if isinstance(payload.error, KeyboardInterrupt):
                    raise KeyboardInterrupt
                yield payload


def run_in_workers(fn: Callable[[Any, Progress], Any], items: list[Any], workers: int,
                   progress: Progress, warm: bool = True) -> Iterator[Outcome]:
    """`fn(item, progress)` for each item in up to `workers` worker processes (`fn` a
    module-level function, items and results picklable); yields each `Outcome` as it
    ends. One worker runs everything in this process. `warm`: the work uses TensorFlow."""
    with WorkerPool(min(workers, len(items)), warm) as pool:
        yield from pool.run(fn, items, progress)

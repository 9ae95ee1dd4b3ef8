"""Independent work side by side: the folds of one run, or the trials of a sweep, each in a
worker process of its own, with TensorFlow's thread pools sized so the workers share the
cores instead of fighting over them.

Workers start before the parent imports TensorFlow when they can (forked, they then
import it while the parent checks the config), otherwise they are spawned. For the folds
of a run the parent is one of the lanes (`parent_lane`): it trains folds itself between
handing them out, so the run loads TensorFlow once per core, not once more in a parent
that would only wait; meanwhile a thread relays the workers' progress (`relay.py`). A
task is a module-level function and picklable arguments. Each worker has its own pipes: the parent
hands it one item at a time, so it always knows which item a worker holds, and a worker
killed mid-message (kill -9, out of memory) damages no one else's. Its progress events
travel back to the parent's `Progress`, so one display shows every worker.

A worker that dies fails only the item it had started (`Outcome.error` a `WorkerDied`;
one it had not started yet goes to another worker); a new worker takes its place while
items wait. Ctrl-C (or a SIGTERM the command line turns into one) interrupts every worker
once: each leaves its backup, as a serial run would, and the parent raises it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from kerastrain.config import Config
from kerastrain.training.progress import Progress
from kerastrain.training.relay import Relay
from kerastrain.training.worker import Outcome, WorkerDied, WorkerFailed, work

__all__ = ["Outcome", "WorkerDied", "WorkerFailed", "WorkerPool", "cores", "early_workers",
           "fold_pool", "run_in_workers"]

_STOP_S = 60.0  # how long interrupted workers get to leave their backups
_IDLE_S = 5.0  # how long idle workers get to leave: they hold nothing unsaved


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def early_workers(cfg: Config) -> int:
    """The lanes to open before the checks (their workers load TensorFlow meanwhile): for
    cross-validation, `runtime.workers`, or for `auto` one per core, never more than the
    folds; the scheme decides after the checks whether to use them."""
    folds = cfg.validation.n_folds
    if not folds:
        return 1
    wanted = cores() if cfg.runtime.workers == "auto" else int(cfg.runtime.workers)
    return max(1, min(wanted, folds))


def fold_pool(cfg: Config) -> WorkerPool:
    """The pool a run's folds train in: `early_workers` lanes, this process one of them."""
    return WorkerPool(early_workers(cfg), parent_lane=True)


@dataclass
class _Worker:
    """A worker process, the parent's ends of its two pipes, the items it was handed (in
    the order it takes them) and whether it has started the first (an item it never
    started goes to another worker)."""

    proc: Any
    tasks: Any
    results: Any
    held: deque = field(default_factory=deque)
    started: bool = False
    backlog: deque = field(default_factory=deque)  # read by a `Relay`, not yet handled
    closed: bool = False


class WorkerPool:
    """Up to `workers` lanes, worker processes started at once (`with WorkerPool(n) as
    pool`) so they are ready by the time there is work; `run` hands them items. With one
    lane (or none needed) everything runs in this process. `parent_lane`: this process is
    one of the `workers` lanes (it starts one worker fewer, and `run` given `local` trains
    items here too)."""

    def __init__(self, workers: int, warm: bool = True, parent_lane: bool = False):
        self.workers = max(1, int(workers))
        self.warm = warm  # load TensorFlow in the workers as they start
        self.parent_lane = parent_lane and self.workers > 1
        self.live: list[_Worker] = []
        self.started = 0

    @property
    def procs(self) -> list[Any]:
        return [w.proc for w in self.live]

    def __enter__(self) -> WorkerPool:
        if self.workers > 1:
            for _ in range(self.workers - self.parent_lane):
                self._start()
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if kind is None:
            self.close()
        else:  # an error or Ctrl-C in the parent: the workers stop now, backups kept
            self._interrupt()

    def _start(self) -> None:
        # Forking is safe while TensorFlow is not loaded here; after that, spawn. Not
        # daemonic: a worker may run a fit that has workers of its own (a sweep trial);
        # workers still die with this process (PR_SET_PDEATHSIG) and close() ends them.
        ctx = mp.get_context("spawn" if "tensorflow" in sys.modules else "fork")
        task_in, task_out = ctx.Pipe(duplex=False)
        result_in, result_out = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=work, daemon=False, name=f"kerastrain-worker-{self.started}",
                           args=(task_in, result_out, max(1, cores() // self.workers),
                                 self.warm))
        proc.start()
        task_in.close()  # the worker's ends: only the worker holds them now
        result_out.close()
        self.started += 1
        self.live.append(_Worker(proc, task_out, result_in))

    def close(self) -> None:
        """Stop the workers. They are idle (every item ended, its files written): one not
        gone within `_IDLE_S` (an interpreter that loaded TensorFlow may hang) is killed."""
        for worker in self.live:
            try:
                worker.tasks.send(None)
            except OSError:  # gone already
                pass
        self._wait(time.monotonic() + _IDLE_S)

    def _interrupt(self) -> None:
        """Ctrl-C for every worker holding an item (a SIGTERM here reaches no worker),
        then wait for their backups. One holding none is killed: one still loading
        TensorFlow (the checks refused the config) can take a minute to exit."""
        for worker in self.live:
            if worker.proc.is_alive():
                try:
                    os.kill(worker.proc.pid, signal.SIGINT if worker.held else signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._wait(time.monotonic() + _STOP_S)

    def _wait(self, deadline: float) -> None:
        """Wait for every worker to end, reading (and dropping) what they still send so
        that none blocks on a full pipe; kill those still there at `deadline`."""
        readers = {w.results: w for w in self.live}
        while any(w.proc.is_alive() for w in self.live) and time.monotonic() < deadline:
            sentinels = [w.proc.sentinel for w in self.live if w.proc.is_alive()]
            for ready in wait([*readers, *sentinels], deadline - time.monotonic()):
                if ready in readers:
                    try:
                        ready.recv()
                    except (EOFError, OSError):
                        del readers[ready]
        for worker in self.live:
            if worker.proc.is_alive():
                worker.proc.kill()
            worker.proc.join(timeout=5)
            worker.tasks.close()
            worker.results.close()
        self.live = []

    def run(self, fn: Callable[[Any, Progress], Any], items: list[Any],
            progress: Progress, local: Callable[[Any, Progress], Any] | None = None
            ) -> Iterator[Outcome]:
        """`fn(item, progress)` for every item, in the workers; yields each `Outcome` as
        it ends (in this process, in order, when the pool has one lane). `local` is how
        this process runs an item when it is a lane itself (`parent_lane`)."""
        local = local if self.parent_lane else None
        if not self.live and local is None:
            for index, item in enumerate(items):
                yield _here(fn, index, item, progress)
            return
        try:
            yield from self._collect(fn, items, progress, local)
        except BaseException:
            self._interrupt()
            raise

    def _collect(self, fn: Callable[[Any, Progress], Any], items: list[Any],
                 progress: Progress, local: Callable[[Any, Progress], Any] | None
                 ) -> Iterator[Outcome]:
        todo = deque(range(len(items)))
        pending, spare = len(items), len(items)  # spare: replacements for dead workers
        while pending:
            self._hand_out(fn, items, todo, from_back=local is not None)
            behind = [w.results for w in self.live if w.backlog]
            ready = behind + wait([*(w.results for w in self.live if not w.closed),
                                   *(w.proc.sentinel for w in self.live)],
                                  0 if (local and todo) or behind else None)
            for worker in list(self.live):
                done, gone = self._read(worker, ready, progress)
                if done is not None:
                    worker.held.remove(done.index)
                    worker.started = False
                    pending -= 1
                    if isinstance(done.error, KeyboardInterrupt):
                        raise KeyboardInterrupt
                    yield done
                if not gone:
                    continue
                self.live.remove(worker)
                worker.proc.join()
                if worker.started:
                    pending -= 1
                    yield Outcome(worker.held.popleft(), error=WorkerDied(
                        f"its worker process (pid {worker.proc.pid}) ended without reporting "
                        f"(exit code {worker.proc.exitcode}): was it killed, or out of "
                        "memory?"))
                todo.extendleft(reversed(worker.held))  # never started: they wait again
                if todo and spare:
                    spare -= 1
                    self._start()
            if local and todo:  # this process's lane: one item, then back to the workers
                self._hand_out(fn, items, todo, from_back=True)  # those just freed first
            if local and todo:
                index = todo.popleft()
                pending -= 1
                with Relay(self.live, progress) as shared:
                    outcome = _here(local, index, items[index], shared)
                yield outcome
            elif todo and not self.live:  # no worker left to start: fail what waits
                while todo:
                    pending -= 1
                    yield Outcome(todo.popleft(), error=WorkerDied(
                        "no worker process left to run it: each one started died"))

    def _hand_out(self, fn: Callable[[Any, Progress], Any], items: list[Any], todo: deque,
                  from_back: bool) -> None:
        """An item to every idle worker. When this process is a lane too (`from_back`: it
        takes from the front), each worker holds a second one: the parent, busy with
        its own, cannot hand out the next the moment a worker is done."""
        depth = 2 if from_back else 1
        for worker in self.live:
            while len(worker.held) < depth and todo:
                index = todo.pop() if from_back else todo.popleft()
                worker.held.append(index)  # before it is sent (a Ctrl-C may come between)
                try:
                    worker.tasks.send((index, fn, items[index]))
                except OSError:  # it died idle: the item waits for another worker
                    worker.held.pop()
                    todo.append(index) if from_back else todo.appendleft(index)
                    break

    def _read(self, worker: _Worker, ready: list[Any],
              progress: Progress) -> tuple[Outcome | None, bool]:
        """Replay the worker's events; returns the outcome it reported, if any, and
        whether it is gone (its pipe closed, or its process ended with nothing left)."""
        if worker.results not in ready and worker.proc.sentinel not in ready:
            return None, False
        while worker.backlog:  # what a `Relay` read for this loop
            kind, payload = worker.backlog.popleft()
            if kind == "done":
                return payload, False
            if kind == "gone":
                return None, True
            worker.started = True
        try:
            while not worker.closed and worker.results.poll():
                kind, payload = worker.results.recv()
                if kind == "done":
                    return payload, False
                if kind == "start":
                    worker.started = True
                    continue
                name, args = payload
                getattr(progress, name)(*args)
        except (EOFError, OSError):  # its end closed, maybe mid-message
            return None, True
        return None, not worker.proc.is_alive()


def _here(fn: Callable[[Any, Progress], Any], index: int, item: Any,
          progress: Progress) -> Outcome:
    """An item run in this process: its outcome (Ctrl-C is raised, not reported)."""
    try:
        return Outcome(index, value=fn(item, progress))
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return Outcome(index, error=exc)


def run_in_workers(fn: Callable[[Any, Progress], Any], items: list[Any], workers: int,
                   progress: Progress, warm: bool = True) -> Iterator[Outcome]:
    """`fn(item, progress)` for each item in up to `workers` worker processes (`fn` a
    module-level function, items and results picklable); yields each `Outcome` as it
    ends. One worker runs everything in this process. `warm`: the work uses TensorFlow."""
    with WorkerPool(min(workers, len(items)), warm) as pool:
        yield from pool.run(fn, items, progress)

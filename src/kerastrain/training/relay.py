"""The workers' messages, read while the parent trains an item of its own (its fold lane):
their progress reaches the display at once, not when the parent's fold ends. What the
pool's loop needs from them (an item started, an outcome, a closed pipe) is kept, in
order, in each worker's `backlog` for the loop to read after."""

from __future__ import annotations

import threading
from multiprocessing.connection import wait
from typing import Any

from kerastrain.training.progress import Progress


class Serialized:
    """A `Progress` whose events come from two threads, one at a time."""

    def __init__(self, inner: Progress, lock: threading.Lock):
        self._inner, self._lock = inner, lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


class Relay:
    """`with Relay(workers, progress) as shared:` a thread replays the workers' progress
    on `progress` while the block runs; `shared` is `progress` for the block's own events."""

    def __init__(self, workers: list[Any], progress: Progress):
        self.workers = [w for w in workers if not w.closed]
        self.lock = threading.Lock()
        self.shared = Serialized(progress, self.lock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kerastrain-relay", daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self.shared

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.is_set():
            pipes = {w.results: w for w in self.workers if not w.closed}
            if not pipes:
                self.stop.wait(0.1)
                continue
            for conn in wait(list(pipes), 0.1):
                self._drain(pipes[conn])

    def _drain(self, worker: Any) -> None:
        try:
            while worker.results.poll():
                kind, payload = worker.results.recv()
                if kind in ("start", "done"):
                    worker.backlog.append((kind, payload))
                    continue
                name, args = payload
                getattr(self.shared, name)(*args)
        except (EOFError, OSError):  # its end closed, maybe mid-message
            worker.closed = True
            worker.backlog.append(("gone", None))

"""`--executor ray`: each trial a Ray task, on the cluster at `--address` or on a Ray
started here for the sweep. At most `jobs` trials run at once, each asking Ray for its
share of the cluster's CPUs (and sizing TensorFlow's thread pools to it). Run directories
are written where each trial's config says: on a cluster, `output.runs_dir` (and the
data) must be on a filesystem every node sees, at the same path."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from kerastrain.errors import UserError
from kerastrain.sweep.trial import failure, run_trial
from kerastrain.training.progress import Progress
from kerastrain.training.worker import share_threads


def _ray_trial(spec: Any, threads: int, cwd: str,
               fn: Callable[[Any, Progress], Any] = run_trial) -> Any:
    """One trial (or a search's lane: `fn`) in a Ray worker (a fresh process:
    `max_calls=1`), from the sweep's working directory so that relative paths mean what
    they meant there."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    share_threads(threads)

    return fn(spec, Progress())


def run_on_ray(specs: list[Any], jobs: int, address: str | None,
               fn: Callable[[Any, Progress], Any] = run_trial) -> Iterator[tuple[int, Any]]:
    """(index, `fn`'s result: run_trial's, or a lane's) for each item as it ends (a task
    that raised or whose worker was lost: `failure`'s dict). A Ray started here is shut
    down at the end; one already running in this process (or a cluster) is left as is."""
    import ray

    running: dict[Any, int] = {}
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
        if not address:
            ray.init(**options)
        else:
            try:
                ray.init(address=address, **options)
            except Exception as exc:  # refused, unreachable, or a token it lacks
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                raise UserError(f"cannot connect to the Ray cluster at {address}: {reason} "
                                "Check the address (host:port of the head, or ray://host:"
                                "port) and, where the cluster requires one, its auth token "
                                "(RAY_AUTH_TOKEN).") from None
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        per_trial = max(1, int(cpus // max(1, jobs)))
        task = ray.remote(num_cpus=per_trial, max_calls=1)(_ray_trial)
        waiting = list(enumerate(specs))
        cwd = os.getcwd()
        while waiting or running:
            while waiting and len(running) < jobs:
                index, spec = waiting.pop(0)
                running[task.remote(spec, per_trial, cwd, fn)] = index
            (ref,), _ = ray.wait(list(running), num_returns=1)
            index = running.pop(ref)
            try:
                value = ray.get(ref)
            except Exception as exc:  # the task's own error, or its worker lost
                value = failure(getattr(exc, "cause", None) or exc)
            yield index, value
    except BaseException:
        for ref in running:  # Ctrl-C or --fail-fast: a rerun resumes them
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()

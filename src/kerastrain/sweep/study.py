"""The study of a search (`--search tpe|random`): Optuna's samplers and pruners over the
`--param` space, kept in a real database (a SQLite file in the sweep directory, or
`--storage URL`) that every process of the sweep, on any machine, reads and writes.

A trial is a *slot* (t001, t002, ...: at most `--trials` of them) and its attempts: the
Optuna trial that first drew its params, then one retry per failure (an enqueued trial
with the same params and the slot in its user attrs, which resumes the slot's run
directory). Claiming the next trial (`claim`) and creating retries happen under a lock
(a file beside a SQLite database; a server database's own row locks otherwise), so two
processes never run the same attempt, and no more than `--trials` slots are drawn.
Importing this module imports Optuna: only searches do."""

from __future__ import annotations

import fcntl
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from kerastrain.sweep.space import Param, yaml_float

MAX_ATTEMPTS = 3  # a slot whose process dies is retried this many times in all
_HOST = socket.gethostname()
_storages: dict[str, Any] = {}


@dataclass(frozen=True)
class SearchSpec:
    """What every process of a search needs (plain values: it crosses to workers)."""

    storage: str
    study: str
    params: tuple[Param, ...]
    search: str
    prune: str
    seed: int
    trials: int
    direction: str  # "minimize" or "maximize"
    epochs: int  # the config's epochs: Hyperband's largest resource
    lock: str | None  # a SQLite database's lock file
    min_epochs: int  # the first epoch a trial can be pruned at (`--min-epochs`)
    factor: int  # Hyperband's reduction factor (`--reduction-factor`)
    startup: int  # TPE's random start-up trials (`--startup-trials`)
    budget: int | None = None  # epochs the search may spend in all (`--budget`)


def lock_file(storage: str) -> str | None:
    """The lock beside a SQLite database (`sqlite:///path`), None for a server's."""
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return f"{os.path.abspath(url.database)}.lock"


@contextmanager
def claiming(spec: SearchSpec) -> Iterator[None]:
    """The study's claim lock, held while a trial is claimed, retried or told."""
    if spec.lock is None:
        yield
        return
    with open(spec.lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _storage(url: str) -> Any:
    """One storage per process (a forked worker makes its own connections)."""
    key = f"{os.getpid()} {url}"
    if key not in _storages:
        kwargs = ({"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {})
        _storages[key] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    return _storages[key]


class PerTrialSeed(optuna.samplers.BaseSampler):
    """Each trial drawn by a sampler of its own, seeded from the study's seed and the
    trial's number (NumPy's SeedSequence of both): trial k draws the same params whichever
    process or machine runs it. TPE is multivariate (it models the params jointly)."""

    def __init__(self, spec: SearchSpec):
        self.spec = spec
        self.made: dict[int, Any] = {}

    def _for(self, number: int) -> Any:
        if number not in self.made:
            seed = int(np.random.SeedSequence([self.spec.seed, number]).generate_state(1)[0])
            with warnings.catch_warnings():  # multivariate TPE is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.made = {number: optuna.samplers.RandomSampler(seed=seed)
                             if self.spec.search == "random" else optuna.samplers.TPESampler(
                                 seed=seed, multivariate=True,
                                 n_startup_trials=self.spec.startup)}
        return self.made[number]

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self._for(trial.number).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, space: dict[str, Any]) -> dict[str, Any]:
        return self._for(trial.number).sample_relative(study, trial, space)

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        return self._for(trial.number).sample_independent(study, trial, name, distribution)


def pruner(spec: SearchSpec) -> Any:
    """`--prune`: median (a trial worse than the median of the others at the same epoch,
    from epoch `min_epochs` on, once a few trials have finished), hyperband (successive
    halving brackets from `min_epochs` to the config's epochs), or none."""
    if spec.prune == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, spec.trials // 4)),
                                           n_warmup_steps=spec.min_epochs)
    if spec.prune == "hyperband":
        return SeededHyperband(spec.seed, min_resource=spec.min_epochs,
                               max_resource=max(1, spec.epochs), reduction_factor=spec.factor)
    return optuna.pruners.NopPruner()


class SeededHyperband(optuna.pruners.HyperbandPruner):
    """Optuna's Hyperband with each trial's bracket drawn from the search's seed and the
    trial's number (Optuna hashes the study's name, which holds the config's path: the same
    seeded search would prune other trials in another folder), laid out at once (Optuna
    waits for the first `prune`, and puts every trial in bracket 0 until then)."""

    def __init__(self, seed: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = seed
        self._try_initialization(None)  # max_resource is given: the study is not read

    def _get_bracket_id(self, study: Any, trial: Any) -> int:
        drawn = int(np.random.SeedSequence([self.seed, trial.number, 1]).generate_state(1)[0])
        n = drawn % self._total_trial_allocation_budget  # brackets in Optuna's shares
        return next(b for b, edge in enumerate(accumulate(self._trial_allocation_budgets))
                    if n < edge)


def open_study(spec: SearchSpec) -> Any:
    """The study, made by the first process to get here (its database tables too: under
    the lock, as two processes creating them at once would collide)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with claiming(spec):
        return optuna.create_study(study_name=spec.study, storage=_storage(spec.storage),
                                   direction=spec.direction, load_if_exists=True,
                                   sampler=PerTrialSeed(spec), pruner=pruner(spec))


def study_seed(spec: SearchSpec) -> int:
    """The seed the study was created with (the first process's), kept in the study."""
    study = open_study(spec)
    with claiming(spec):
        seed = study.user_attrs.get("seed")
        if seed is None:
            study.set_user_attr("seed", spec.seed)
            return spec.seed
    return int(seed)


def suggest(trial: Any, params: tuple[Param, ...]) -> dict[str, str]:
    """The trial's `--set` texts, each param drawn (or, for a retry, fixed) by Optuna."""
    texts = {}
    for p in params:
        if p.kind == "choice":
            texts[p.key] = str(trial.suggest_categorical(p.key, list(p.args)))
        elif p.kind == "int":
            texts[p.key] = str(trial.suggest_int(p.key, int(p.args[0]), int(p.args[1])))
        else:
            texts[p.key] = yaml_float(trial.suggest_float(p.key, *p.args,
                                                          log=p.kind == "loguniform"))
    return texts


def label(slot: int) -> str:
    return f"t{slot:03d}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _retry(study: Any, frozen: Any, attempt: int) -> None:
    attrs = frozen.user_attrs
    study.enqueue_trial(frozen.params, user_attrs={
        "slot": attrs["slot"], "retry_of": frozen.number, "attempt": attempt,
        **({"run_dir": attrs["run_dir"]} if attrs.get("run_dir") else {})})


def reap(study: Any) -> None:
    """A running attempt whose process (on this machine) is gone: failed, and retried
    while the slot has attempts left. Call under `claiming`."""
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = frozen.user_attrs
        if attrs.get("host") != _HOST or "pid" not in attrs or _alive(int(attrs["pid"])):
            continue
        running = optuna.trial.Trial(study, frozen._trial_id)
        running.set_user_attr("status", "failed")
        running.set_user_attr("error", (
            f"its process (pid {attrs['pid']}) ended without reporting: was it killed, or "
            "out of memory?"))
        try:
            study.tell(frozen.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # another process told it first
            continue
        if int(attrs.get("attempt", 1)) < MAX_ATTEMPTS:
            _retry(study, frozen, int(attrs.get("attempt", 1)) + 1)


def retry_failed(study: Any) -> None:
    """At the start of a sweep command: every slot whose last attempt failed or was
    interrupted gets one more. Call under `claiming`."""
    for frozen in latest(study).values():
        if frozen.state == TrialState.FAIL and "slot" in frozen.user_attrs:
            _retry(study, frozen, int(frozen.user_attrs.get("attempt", 1)) + 1)


def latest(study: Any) -> dict[int, Any]:
    """Each slot's last attempt, by slot."""
    found: dict[int, Any] = {}
    for frozen in study.get_trials(deepcopy=False):
        slot = frozen.user_attrs.get("slot")
        if slot is not None and (slot not in found or frozen.number > found[slot].number):
            found[int(slot)] = frozen
    return found


@dataclass(frozen=True)
class Claim:
    """An attempt this process runs: its Optuna trial, slot, `--set` texts and attempt."""

    number: int
    trial_id: int
    slot: int
    overrides: dict[str, str]
    attempt: int
    run_dir: str | None


def claim(study: Any, spec: SearchSpec) -> Claim | None:
    """The next attempt to run (a retry first), or None when every slot is taken."""
    with claiming(spec):
        reap(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        fresh = [t for t in trials if "retry_of" not in t.user_attrs
                 and not t.user_attrs.get("surplus")]
        if not waiting and (len(fresh) >= spec.trials or spent_up(trials, spec)):
            return None
        trial = study.ask()
        attrs = trial.user_attrs
        if "retry_of" in attrs:
            slot, attempt = int(attrs["slot"]), int(attrs["attempt"])
        else:
            slot, attempt = 1 + sum(t.number < trial.number for t in fresh), 1
            if slot > spec.trials:  # another process took the last slot first
                trial.set_user_attr("surplus", True)
                study.tell(trial, state=TrialState.FAIL)
                return None
        for key, value in {"slot": slot, "attempt": attempt, "host": _HOST,
                           "pid": os.getpid()}.items():
            trial.set_user_attr(key, value)
        overrides = suggest(trial, spec.params)
    return Claim(trial.number, trial._trial_id, slot, overrides, attempt, attrs.get("run_dir"))


def work_left(study: Any, spec: SearchSpec) -> bool:
    """Whether a process joining now would find an attempt to run."""
    with claiming(spec):
        reap(study)
        trials = study.get_trials(deepcopy=False)
    fresh = [t for t in trials if "retry_of" not in t.user_attrs
             and not t.user_attrs.get("surplus")]
    return any(t.state == TrialState.WAITING for t in trials) or (
        len(fresh) < spec.trials and not spent_up(trials, spec))


def spent_up(trials: list[Any], spec: SearchSpec) -> bool:
    """Whether the trials have trained the search's `--budget` of epochs: each finished
    one its epochs, each running one the epochs it has reported so far."""
    return spec.budget is not None and sum(
        int(t.user_attrs.get("epochs") or 0) if t.state.is_finished() else (t.last_step or 0)
        for t in trials) >= spec.budget

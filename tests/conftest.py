"""Shared fixtures: the CLI through Typer's CliRunner, and small configs written to tmp_path."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kerastrain.cli import app

HERE = Path(__file__).parent
REPO = HERE.parent

# TensorBoard's logs cost about 0.2 s of CPU per tiny fit (`output.tensorboard: auto` with
# the package installed, as the `test` extra installs it): the suite trains as if the
# package were absent, in its own processes and in every process it starts (the
# sitecustomize first on PYTHONPATH), except the tests marked `tensorboard`.
WITHOUT_TENSORBOARD = str(HERE / "without_tensorboard")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (WITHOUT_TENSORBOARD, os.environ.get("PYTHONPATH")) if p)
sys.modules.setdefault("tensorboard", None)


class Cli:
    """Runs `kerastrain ARGS` in-process; returns the click Result."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def pytest_collection_modifyitems(config, items) -> None:
    """The slow tests first (in their order). Side by side (`-n 2`; pyproject.toml's
    `--dist loadfile --no-loadscope-reorder`), each file's tests run in one worker, so
    that its module fixtures (trained runs, a server) are made once; the files go out one
    at a time, in this order, to whichever worker is free: those with the longest tests
    start early and the quick ones fill in at the end. (xdist's plain `load` gave the
    first worker the first quarter of this list in one chunk: every slow test, one after
    another, while the other worker ran out of work.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _tensorboard_when_marked(request, monkeypatch) -> None:
    """A test marked `tensorboard` sees the package as installed, here and in the
    processes it starts."""
    if request.node.get_closest_marker("tensorboard") is None:
        return
    if sys.modules.get("tensorboard", 0) is None:
        monkeypatch.delitem(sys.modules, "tensorboard")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in os.environ["PYTHONPATH"].split(os.pathsep) if p != WITHOUT_TENSORBOARD))


@pytest.fixture
def cli() -> Cli:
    return Cli()


def iris_config(runs_dir: Path, **changes) -> dict:
    """A small, fast iris classifier config writing runs under `runs_dir`."""
    config = {
        "name": "iris-test",
        "seed": 0,
        "data": {"source": {"type": "sklearn", "name": "iris"}, "target": "target"},
        "model": {"layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                             {"type": "Dense", "units": 3, "activation": "softmax"}]},
        "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.02},
                    "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
        "training": {"epochs": 15, "batch_size": 16},
        "validation": {"validation_split": 0.2, "test_split": 0.2},
        "output": {"runs_dir": str(runs_dir)},
    }
    for key, value in changes.items():
        config[key] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def iris_yaml(tmp_path: Path) -> Path:
    return write_config(tmp_path / "iris.yaml", iris_config(tmp_path / "runs"))


@pytest.fixture(scope="session")
def iris_run(tmp_path_factory) -> Path:
    """One trained iris run shared by the read-only tests of evaluate and predict (trained
    once per session, by the first worker that needs it)."""
    def make(tmp: Path) -> str:
        config = write_config(tmp / "iris.yaml", iris_config(tmp / "runs"))
        result = Cli()("fit", config, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["run_dir"]

    return Path(shared_by_workers(tmp_path_factory, "iris_run", make))


def shared_by_workers(tmp_path_factory: pytest.TempPathFactory, name: str, make):
    """`make(folder)`'s result (JSON), made once per test session: run side by side
    (`-n 2`), the first worker that needs it makes it and the other waits and reads it."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, which its workers share
    done = base / f"shared-{name}.json"
    fd = os.open(base / f"shared-{name}.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not done.exists():
            folder = base / f"shared-{name}"
            folder.mkdir(exist_ok=True)
            done.write_text(json.dumps(make(folder)))
        return json.loads(done.read_text())
    finally:
        os.close(fd)


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CLI runner: commands run in-process, stdout and stderr apart."""
    return CliRunner()


HEAVY = ("tensorflow", "keras", "matplotlib", "sklearn", "scipy", "scipy.stats", "optuna",
         "mlflow")
_AFTER = """
import json, os, sys
sys.argv = ["kerastrain", *sys.argv[1:]]
from kerastrain.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
with open(os.environ["KT_MODULES_OUT"], "w") as out:
    heavy = os.environ["KT_HEAVY"].split(",")
    json.dump([code, sorted(m for m in heavy if m in sys.modules)], out)
"""


def heavy_modules_after(tmp_path: Path, *args: str, cwd: Path | None = None) -> tuple[int, list]:
    """Run `kerastrain ARGS` through its entry point in a fresh interpreter; its exit code
    and which of the slow packages (`HEAVY`) it imported."""
    import subprocess

    report = tmp_path / "modules.json"
    env = {**os.environ, "KT_MODULES_OUT": str(report), "KT_HEAVY": ",".join(HEAVY)}
    subprocess.run([sys.executable, "-c", _AFTER, *map(str, args)], cwd=cwd or tmp_path,
                   env=env, capture_output=True, text=True, timeout=120)
    code, heavy = json.loads(report.read_text())
    return code, heavy


@pytest.fixture
def start():
    """Starts `kerastrain ARGS` in a session of its own (`start(*args)`, a
    `processes.Started`); whatever of theirs still runs when the test ends (failed or not)
    is killed, so that a failure leaves no training behind."""
    from processes import Started, kill_group

    started: list[Started] = []

    def starter(*args: object, **kwargs) -> Started:
        started.append(Started(*args, **kwargs))
        return started[-1]

    yield starter
    for one in started:
        kill_group(one.pid)
        one.proc.wait()

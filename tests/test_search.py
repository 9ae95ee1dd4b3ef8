"""`kerastrain sweep --search tpe|random`: seeded draws, the study in SQLite shared by two
processes, pruning recorded in the manifest and run.json, a killed worker's trial
retried in its own run directory."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, heavy_modules_after, iris_config, write_config

optuna = pytest.importorskip("optuna")

from kerastrain.sweep.search import plan_search  # noqa: E402
from kerastrain.sweep.study import claim, label, open_study  # noqa: E402

LR = "compile.optimizer.learning_rate=loguniform:1e-3,1e-1"
UNITS = "model.layers.0.units=int:4,32"
ACT = "model.layers.0.activation=choice:relu,tanh"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = iris_config(tmp_path / "runs")
    cfg["training"]["epochs"] = 2
    cfg["output"]["plots"] = False
    return write_config(tmp_path / "iris.yaml", cfg)


def _manifest(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _draws(config: Path, where: Path, seed: int, values: list[float]) -> list[dict]:
    """The overrides a TPE study claims, told the given values one after another."""
    planned = plan_search(config, [], [LR, UNITS, ACT], "tpe", len(values), seed,
                          sweep_dir=where)
    where.mkdir()
    study = open_study(planned.spec)
    drawn = []
    for value in values:
        got = claim(study, planned.spec)
        drawn.append(got.overrides)
        study.tell(got.number, value)
    assert claim(study, planned.spec) is None  # every slot taken
    return drawn


def test_a_seeded_tpe_search_draws_the_same_trials(config: Path, tmp_path: Path) -> None:
    values = [0.9, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4]  # past TPE's random start-up trials
    first = _draws(config, tmp_path / "a", 7, values)
    assert first == _draws(config, tmp_path / "b", 7, values)
    assert first != _draws(config, tmp_path / "c", 8, values)
    assert set(first[0]) == {"compile.optimizer.learning_rate", "model.layers.0.units",
                             "model.layers.0.activation"}


def _pruned_search(folder: Path, seed: int) -> list[tuple]:
    """A seeded TPE + Hyperband study of 16 trials on a copy of the config in `folder`,
    each trial's curve a function of its params: (params, state, epochs) per trial."""
    cfg = iris_config(folder / "runs")
    cfg["training"]["epochs"] = 16
    folder.mkdir(parents=True)
    planned = plan_search(write_config(folder / "iris.yaml", cfg), [], [LR, UNITS, ACT],
                          "tpe", 16, seed, sweep_dir=folder / "s", prune="hyperband")
    (folder / "s").mkdir()
    study = open_study(planned.spec)
    while (got := claim(study, planned.spec)) is not None:
        trial = optuna.trial.Trial(study, got.trial_id)
        lr, units = float(got.overrides[LR.split("=")[0]]), int(got.overrides[UNITS.split("=")[0]])
        final = abs(math.log10(lr) + 2) + units / 100 + (got.overrides[ACT.split("=")[0]] == "tanh")
        for epoch in range(1, 17):
            trial.report(final * (1 + 4 / epoch), epoch)
            if trial.should_prune():
                study.tell(got.number, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(got.number, final)
    return [(t.params, t.state.name, t.last_step) for t in study.get_trials()]


def test_the_same_seeded_pruned_search_in_another_folder_runs_the_same_trials(
        tmp_path: Path) -> None:
    first = _pruned_search(tmp_path / "a", 3)
    assert first == _pruned_search(tmp_path / "elsewhere" / "b", 3)
    assert {state for _, state, _ in first} == {"COMPLETE", "PRUNED"}
    assert first != _pruned_search(tmp_path / "c", 4)


def test_search_arguments_that_cannot_be_used(cli, config: Path, tmp_path: Path) -> None:
    cases = [(("--search", "tpe", "--param", LR), "--trials N"),
             (("--search", "tpe", "--trials", "2"), "--param"),
             (("--search", "tpe", "--trials", "2", "--param", LR, "--grid", "a=1,2"),
              "--grid"),
             (("--search", "tpe", "--trials", "2", "--param", LR, "--prune", "median",
               "--metric", "test.loss"), "--prune"),
             (("--search", "tpe", "--trials", "2", "--param", "training.epochs=int:0,3"),
              "training.epochs=0"),
             (("--grid", "training.epochs=1,2", "--prune", "median"), "--search tpe"),
             (("--search", "tpe", "--trials", "2", "--param", LR, "--min-epochs", "1"),
              "--prune median or hyperband"),
             (("--search", "tpe", "--trials", "2", "--param", LR, "--prune", "median",
               "--reduction-factor", "2"), "--prune hyperband"),
             (("--search", "tpe", "--trials", "2", "--param", LR, "--prune", "hyperband",
               "--min-epochs", "3"), "1 to the config's training.epochs (2)"),
             (("--search", "random", "--trials", "2", "--param", LR, "--startup-trials",
               "1"), "--search tpe"),
             (("--search", "tpe", "--trials", "2", "--param", LR, "--budget", "0"),
              "--budget 0"),
             (("--grid", "training.epochs=1,2", "--budget", "4"), "--search tpe")]
    for args, message in cases:
        result = cli("sweep", config, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def test_pruning_and_startup_settings_default_from_the_config_and_can_be_given(
        config: Path, tmp_path: Path) -> None:
    from kerastrain.sweep.study import PerTrialSeed, pruner

    def planned(prune: str, trials: int = 20, **given) -> tuple:
        spec = plan_search(config, ["training.epochs=30"], [LR], "tpe", trials, 0,
                           sweep_dir=tmp_path / "s", prune=prune, **given).spec
        return spec, pruner(spec), PerTrialSeed(spec)._for(0)

    spec, hyperband, tpe = planned("hyperband")  # rungs at 1, 4, 16 of 30 epochs
    assert (spec.min_epochs, spec.factor, spec.startup) == (1, 4, 6)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert (hyperband._min_resource, hyperband._max_resource,
            hyperband._reduction_factor) == (1, 30, 4)
    assert tpe._n_startup_trials == 6
    spec, median, _ = planned("median", trials=60)
    assert (spec.min_epochs, spec.startup) == (6, 10)  # epochs // 5; trials // 3, at most 10
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == 6
    spec, hyperband, tpe = planned("hyperband", min_epochs=2, factor=3, startup=3)
    assert (hyperband._min_resource, hyperband._reduction_factor) == (2, 3)
    assert tpe._n_startup_trials == 3
    record = plan_search(config, ["training.epochs=30"], [LR], "tpe", 20, 0,
                         prune="hyperband", factor=3).record
    assert record["tuning"] == {"min_epochs": 3, "factor": 3, "startup": 6}  # 30 // 3**2
    assert record["definition"]["factor"] == 3  # another study than the default's


def test_a_search_claims_no_trial_once_its_budget_of_epochs_is_spent(
        config: Path, tmp_path: Path) -> None:
    planned = plan_search(config, [], [LR], "random", 10, 0, sweep_dir=tmp_path / "s",
                          budget=5)
    (tmp_path / "s").mkdir()
    study = open_study(planned.spec)
    claimed = 0
    while (got := claim(study, planned.spec)) is not None:
        claimed += 1
        optuna.trial.Trial(study, got.trial_id).set_user_attr("epochs", 2)
        study.tell(got.number, 0.5)
    assert claimed == 3  # 2 and 4 epochs are under 5; 6 is not
    assert planned.record["budget"] == 5


def test_the_trial_running_when_the_budget_is_spent_is_pruned(cli, config: Path) -> None:
    args = ("--search", "random", "--trials", "5", "--param", LR, "--seed", "0",
            "--set", "training.epochs=3", "--budget", "4", "--json")
    result = cli("sweep", config, *args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [t["status"] for t in out["trials"]] == ["completed", "pruned"]
    record = json.loads((Path(out["sweep_dir"]) / "sweep.json").read_text())
    assert record["epochs_spent"] == 4  # 3, then 1 of the second trial's 3
    info = json.loads((Path(out["trials"][1]["run_dir"]) / "run.json").read_text())
    assert info["pruned"]["epoch"] == 1


def test_a_pruned_trial_is_recorded_with_its_epochs(cli, config: Path) -> None:
    args = ("--search", "random", "--trials", "2", "--param", LR, "--prune", "median",
            "--seed", "0", "--set", "training.epochs=3")
    planned = plan_search(config, ["training.epochs=3"], [LR], "random", 2, 0,
                          prune="median")
    planned.dir.path.mkdir(parents=True)
    study = open_study(planned.spec)  # a first trial no other can beat: 0.0 every epoch
    study.add_trial(optuna.trial.create_trial(
        params={"compile.optimizer.learning_rate": 0.01},
        distributions={"compile.optimizer.learning_rate": optuna.distributions.FloatDistribution(
            1e-3, 1e-1, log=True)},
        value=0.0, intermediate_values={1: 0.0, 2: 0.0, 3: 0.0}, user_attrs={"slot": 1}))
    result = cli("sweep", config, *args, "--json")
    assert result.exit_code == 0, result.output  # pruned is not a failure
    rows = {r["trial"]: r for r in _manifest(planned.dir.path)}
    assert rows["t002"]["status"] == "pruned", rows
    run = Path(rows["t002"]["run_dir"])
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "pruned"
    assert info["pruned"]["epoch"] == 1 and info["pruned"]["metric"] == "val_loss"
    assert len((run / "history.csv").read_text().splitlines()) == 2  # header, epoch 1
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [t["status"] for t in out["trials"] if t["trial"] == "t002"] == ["pruned"]
    record = json.loads((planned.dir.path / "sweep.json").read_text())
    pruned = [p for p in record["curve"] if p["state"] == "pruned"]
    assert [(p["trial"], p["epochs"]) for p in pruned] == [("t002", 1)]
    assert record["epochs_spent"] == 1  # the added trial trained nothing here
    assert "<circle" in (planned.dir.path / "search.svg").read_text()


_KILLER = '''
import os, signal
from pathlib import Path
from kerastrain import _keras
from kerastrain.registry import register

keras = _keras.keras()


@register("callbacks")
class KillOnce(keras.callbacks.Callback):
    """Kills its own process as epoch 2 of a real fit begins (the checks' probe sets no
    params), the first time only."""

    def __init__(self, marker):
        super().__init__()
        self.marker = Path(marker)

    def get_config(self):
        return {"marker": str(self.marker)}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and getattr(self, "params", None) and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.slow  # two worker processes, each loading TensorFlow, and a third after the kill
def test_a_killed_worker_s_trial_is_retried_in_its_run_directory(
        cli, tmp_path: Path) -> None:
    (tmp_path / "killer.py").write_text(_KILLER)
    cfg = iris_config(tmp_path / "runs", plugins=["killer"])
    cfg["training"]["epochs"] = 2
    cfg["output"]["plots"] = False
    cfg["callbacks"] = [{"type": "KillOnce", "marker": str(tmp_path / "killed")}]
    config = write_config(tmp_path / "iris.yaml", cfg)
    result = cli("sweep", config, "--search", "random", "--trials", "2", "--param", LR,
                 "--jobs", "2", "--seed", "0", "--json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "killed").exists()  # a worker was killed mid-trial
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = _manifest(sweep_dir)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert sorted(r["action"] for r in rows) == ["resumed", "trained"]
    resumed = next(Path(r["run_dir"]) for r in rows if r["action"] == "resumed")
    info = json.loads((resumed / "run.json").read_text())
    assert [r["was"] for r in info["resumes"]] == ["running"]
    assert len([p for p in (tmp_path / "runs").iterdir() if (p / "run.json").exists()]) == 2


@pytest.mark.slow  # two kerastrain processes, each loading TensorFlow
def test_two_processes_share_one_sqlite_study(config: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, "-m", "kerastrain", "sweep", str(config), "--search", "tpe",
               "--trials", "3", "--param", LR, "--seed", "1", "--storage", storage, "--json",
               "--set", "training.epochs=1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stdout + stderr
    study = optuna.load_study(study_name=_study_name(tmp_path), storage=storage)
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    assert sorted(t.user_attrs["slot"] for t in trials) == [1, 2, 3]
    runs = [p for p in (tmp_path / "runs").iterdir() if (p / "run.json").exists()]
    assert len(runs) == 3  # no trial trained twice
    tags = [json.loads((p / "run.json").read_text())["sweep"]["trial"] for p in runs]
    assert sorted(tags) == [label(i) for i in (1, 2, 3)]


def _study_name(tmp_path: Path) -> str:
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    return json.loads((sweep_dir / "sweep.json").read_text())["study"]


def _cv_run(path: Path, losses: list[float]) -> str:
    """A completed 3-fold run as `compare` reads it (run.json, cv_summary, splits)."""
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"status": "completed"}))
    folds = [str(i + 1) for i in range(len(losses))]
    (path / "cv_summary.json").write_text(json.dumps({"folds": folds, "metrics": {"loss": {
        "mean": sum(losses) / len(losses), "per_fold": dict(zip(folds, losses, strict=True))}}}))
    rows = list(range(30))
    (path / "splits.json").write_text(json.dumps({"test": [], "folds": [
        {"name": f, "train": [r for r in rows if r % 3 != i], "validation": rows[i::3]}
        for i, f in enumerate(folds)]}))
    return str(path)


def test_the_winner_is_tested_against_the_runner_up(tmp_path: Path) -> None:
    from kerastrain.sweep.manifest import Row
    from kerastrain.sweep.verdict import winner

    def rows(a: list[float], b: list[float], name: str) -> list[Row]:
        return [Row("t002", {}, "completed", value=sum(a) / 3,
                    run_dir=_cv_run(tmp_path / f"{name}-a", a)),
                Row("t001", {}, "completed", value=sum(b) / 3,
                    run_dir=_cv_run(tmp_path / f"{name}-b", b))]

    clear = winner(rows([0.10, 0.12, 0.11], [0.50, 0.53, 0.51], "clear"), "val_loss")
    assert (clear["best"], clear["runner_up"], clear["beyond_noise"]) == ("t002", "t001", True)
    assert "beyond the noise" in clear["statement"]
    noisy = winner(rows([0.10, 0.40, 0.20], [0.30, 0.15, 0.28], "noisy"), "val_loss")
    assert noisy["beyond_noise"] is False and "within the noise" in noisy["statement"]
    holdout = [Row("t001", {}, "completed", value=0.1, run_dir=str(tmp_path)),
               Row("t002", {}, "completed", value=0.2, run_dir=str(tmp_path))]
    assert winner(holdout, "val_loss")["test"] is None


def test_runs_export_to_mlflow_reads_back(cli, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    runs_dir = tmp_path / "runs"
    for name, loss in (("iris-a-20260101-000000-aaaa", 0.5), ("iris-b-20260101-000001-bbbb",
                                                               0.3)):
        run = runs_dir / name
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({
            "status": "completed", "started_at": "2026-01-01T00:00:00",
            "command": ["kerastrain", "fit", "x.yaml"]}))
        (run / "config.yaml").write_text("name: iris\ntraining: {epochs: 2, batch_size: 16}\n")
        (run / "metrics.json").write_text(json.dumps({"validation": {"loss": loss}}))
        (run / "history.csv").write_text(f"epoch,loss,val_loss\n1,0.9,0.8\n2,0.6,{loss}\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = cli("runs", "export", runs_dir, "--mlflow", uri, "--json")
    assert result.exit_code == 0, result.output
    assert [r["new"] for r in json.loads(result.stdout)["runs"]] == [True, True]
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("kerastrain")
    found = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(found) == {"iris-a-20260101-000000-aaaa", "iris-b-20260101-000001-bbbb"}
    run = found["iris-b-20260101-000001-bbbb"]
    assert run.data.params["training.epochs"] == "2" and run.info.status == "FINISHED"
    assert run.data.metrics["validation.loss"] == 0.3
    curve = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in curve] == [(1, 0.8), (2, 0.3)]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"run.json",
                                                                       "history.csv"}
    again = cli("runs", "export", runs_dir, "--mlflow", uri, "--json")  # nothing twice
    assert [r["new"] for r in json.loads(again.stdout)["runs"]] == [False, False]


@pytest.mark.parametrize("args", [["sweep", "--help"], ["runs", "export", "--help"]])
def test_search_and_export_help_import_neither_optuna_nor_mlflow(tmp_path, args) -> None:
    code, heavy = heavy_modules_after(tmp_path, *args)
    assert code == 0 and heavy == []


@pytest.mark.tensorboard
def test_each_trial_writes_an_hparams_summary(cli, config: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from kerastrain import _keras

    result = cli("sweep", config, "--grid", "compile.optimizer.learning_rate=0.01", "--json")
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (tmp_path / "runs").iterdir() if (p / "run.json").exists()]
    tf = _keras.tf()
    plugins = {value.metadata.plugin_data.plugin_name
               for path in (run / "logs").glob("events.out.tfevents.*")
               for event in tf.compat.v1.train.summary_iterator(str(path))
               for value in event.summary.value}
    assert "hparams" in plugins


def test_ctrl_c_keeps_finished_trials_and_a_rerun_resumes_the_interrupted_one(
        cli, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_sweep import _interrupt_second_fit  # Ctrl-C in epoch 2 of the second trial

    args = ("sweep", config, "--search", "random", "--trials", "2", "--param", LR,
            "--seed", "0")
    with monkeypatch.context() as patch:
        _interrupt_second_fit(patch)
        assert cli(*args).exit_code == 130
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    rows = {r["trial"]: r for r in _manifest(sweep_dir)}
    assert (rows["t001"]["status"], rows["t002"]["status"]) == ("completed", "interrupted")
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    again = {r["trial"]: r for r in _manifest(sweep_dir)}
    assert again["t001"]["run_dir"] == rows["t001"]["run_dir"]  # not trained again
    assert (again["t002"]["status"], again["t002"]["action"]) == ("completed", "resumed")
    assert again["t002"]["run_dir"] == rows["t002"]["run_dir"]
    assert len([p for p in (tmp_path / "runs").iterdir() if (p / "run.json").exists()]) == 2

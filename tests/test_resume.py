"""`kerastrain resume RUN_DIR`: an interrupted run continues in its own directory and
ends as an uninterrupted run with the same seed would; finished folds are kept."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import iris_config, write_config
from kerastrain.rundir import read_history, write_history
from kerastrain.training import fold as fold_module
from kerastrain.training import schemes
from kerastrain.training.backup import compact

# Keras restores the weights, the optimizer's slots and iterations, and the epoch; the
# batches of a resumed epoch are the ones it would have drawn anyway (observed identical
# on Keras 3.15 / TF 2.21, CPU). What remains is float round-off between two processes'
# kernels, so the resumed run must agree to 1e-5, far below any effect of training.
RTOL, ATOL = 1e-5, 1e-6


def _interrupt(monkeypatch: pytest.MonkeyPatch, epoch: int, where: str = "",
               error: type[BaseException] = KeyboardInterrupt) -> None:
    """Ctrl-C (or `error`) at the start of `epoch` (0-based) of every fit whose output
    folder's name starts with `where`, after the previous epoch ended."""
    original = fold_module.EpochBackup

    class Interrupting(original):
        def on_epoch_begin(self, e: int, logs: dict | None = None) -> None:
            if e == epoch and self.path.parents[2].name.startswith(where):
                raise error("stopped by the test")

    monkeypatch.setattr(fold_module, "EpochBackup", Interrupting)


def _run_dir(result) -> Path:
    return Path(json.loads(result.stdout.strip().splitlines()[-1])["run_dir"])


def _only_run(runs: Path) -> Path:
    (run,) = list(runs.iterdir())
    return run


def test_history_keeps_each_value_on_its_epoch(tmp_path: Path) -> None:
    """With validation_freq 2, val_* is logged on epochs 2 and 4 only: history.csv holds
    it on those rows, the others empty."""
    rows = [{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}, {"loss": 0.25},
            {"loss": float("nan"), "val_loss": 0.6}]
    history = compact(rows)
    assert history["loss"][:3] == [1.0, 0.5, 0.25] and np.isnan(history["loss"][3])
    assert np.isnan(history["val_loss"][0]) and np.isnan(history["val_loss"][2])
    assert history["val_loss"][1] == 0.7 and history["val_loss"][3] == 0.6
    write_history(tmp_path / "h.csv", history)
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines == ["epoch,loss,val_loss", "1,1.0,", "2,0.5,0.7", "3,0.25,", "4,,0.6"]
    back = read_history(tmp_path / "h.csv")
    assert back["val_loss"][1] == 0.7 and back["val_loss"][3] == 0.6
    assert np.isnan(back["val_loss"][0]) and np.isnan(back["loss"][3])


def _recorded_run(path: Path, status: str) -> Path:
    """A run directory as `fit` leaves it before training, with the given status."""
    path.mkdir()
    write_config(path / "config.yaml", iris_config(path.parent))
    (path / "run.json").write_text(json.dumps({"status": status}))
    return path


def test_resume_refuses_a_completed_run(cli, tmp_path: Path) -> None:
    result = cli("resume", _recorded_run(tmp_path / "run", "completed"))
    assert result.exit_code == 2
    assert "completed; there is nothing to resume" in result.stderr
    assert "kerastrain fit" in result.stderr


def test_resume_refuses_a_running_run_unless_forced(cli, tmp_path: Path) -> None:
    result = cli("resume", _recorded_run(tmp_path / "run", "running"))
    assert result.exit_code == 2 and "--force" in result.stderr


def test_resume_refuses_overrides(cli, tmp_path: Path) -> None:
    result = cli("resume", _recorded_run(tmp_path / "run", "interrupted"), "--set",
                 "training.epochs=50")
    assert result.exit_code == 2
    assert "resume takes no --set" in result.stderr and "config.yaml" in result.stderr


def test_resume_refuses_a_folder_that_is_no_run(cli, tmp_path: Path) -> None:
    result = cli("resume", tmp_path)
    assert result.exit_code == 2 and "not a kerastrain run directory" in result.stderr


def test_resume_writes_nothing_into_a_folder_that_is_no_run(cli, tmp_path: Path,
                                                           monkeypatch) -> None:
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    write_config(folder / "config.yaml", iris_config(tmp_path))  # half a run: no run.json
    monkeypatch.chdir(folder)
    for given in (folder, ""):  # "" is the working directory
        result = cli("resume", given)
        assert result.exit_code == 2, result.output
        assert "not a kerastrain run directory" in result.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]


def test_a_configured_backup_and_restore_is_refused(cli, tmp_path: Path) -> None:
    config = iris_config(tmp_path / "runs", callbacks=[{"type": "BackupAndRestore",
                                                        "backup_dir": "b"}])
    result = cli("validate", write_config(tmp_path / "c.yaml", config))
    assert result.exit_code == 2
    assert "callbacks.0" in result.stderr and "already part of every run" in result.stderr


def test_an_unreadable_backup_is_exit_2_and_a_missing_one_is_said(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = iris_config(tmp_path / "runs")
    config["training"]["epochs"] = 4
    config["output"]["plots"] = False
    path = write_config(tmp_path / "iris.yaml", config)
    with monkeypatch.context() as patch:
        _interrupt(patch, epoch=2)
        assert cli("fit", path).exit_code == 130
    run = _only_run(tmp_path / "runs")
    backup = run / "checkpoints" / "backup" / "backup.npz"
    backup.write_bytes(backup.read_bytes()[:200])  # torn: the finished epochs unreadable

    result = cli("resume", run)
    assert result.exit_code == 2, result.output
    assert f"{backup}: the backup of holdout is unreadable" in result.stderr
    assert "delete that file and resume again" in result.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and "resumes" not in info
    assert backup.is_file()

    backup.unlink()  # starting over knowingly
    result = cli("resume", run)
    assert result.exit_code == 0, result.output
    assert f"holdout has no backup ({backup})" in result.stderr
    assert "trains from epoch 0" in result.stderr
    info = json.loads((run / "run.json").read_text())
    assert [(r["fold"], r["epochs_done"]) for r in info["resumes"]] == [("holdout", 0)]
    assert len(read_history(run / "history.csv")["loss"]) == 4


@pytest.mark.slow  # three short Keras fits
def test_interrupted_holdout_resumes_to_the_uninterrupted_result(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stopped early after 14 epochs; at the interruption after epoch 12, EarlyStopping is
    # waiting (its best weights are from epoch 10) and ReduceLROnPlateau has just cut the
    # rate: Keras resets both on every fit, the run carries them over.
    config = iris_config(tmp_path / "runs", callbacks=[
        {"type": "EarlyStopping", "monitor": "val_loss", "patience": 4, "min_delta": 0.02,
         "restore_best_weights": True},
        {"type": "ReduceLROnPlateau", "patience": 2, "min_delta": 0.02}])
    config["training"]["epochs"] = 30
    path = write_config(tmp_path / "iris.yaml", config)
    whole = _run_dir(cli("fit", path, "--json", "--set", f"output.runs_dir={tmp_path / 'a'}"))

    with monkeypatch.context() as patch:
        _interrupt(patch, epoch=12)
        result = cli("fit", path, "--set", f"output.runs_dir={tmp_path / 'b'}")
    assert result.exit_code == 130, result.stderr
    run = _only_run(tmp_path / "b")
    assert f"kerastrain resume {run}" in result.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert (run / "checkpoints" / "backup" / "backup.npz").is_file()
    assert not (run / "model.keras").exists()

    first = json.loads((run / "run.json").read_text())
    assert first["duration_s"] > 0
    # as if the first session had taken 1000 s: the resumed run's duration adds its own
    (run / "run.json").write_text(json.dumps({**first, "duration_s": 1000.0}))
    began = time.monotonic()
    result = cli("resume", run, "--json")
    took = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert _run_dir(result) == run
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and "error" not in info
    assert 1000.0 < info["duration_s"] <= 1000.0 + took
    assert [(r["was"], r["fold"], r["epochs_done"]) for r in info["resumes"]] == \
        [("interrupted", "holdout", 12)]
    assert not (run / "checkpoints" / "backup").exists()

    expected, got = read_history(whole / "history.csv"), read_history(run / "history.csv")
    assert list(got) == list(expected)
    assert len(got["loss"]) == len(expected["loss"]) == 14  # every epoch once, none lost
    assert expected["learning_rate"][11] > expected["learning_rate"][12]  # cut after 12
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=RTOL, atol=ATOL, err_msg=key)
    want, have = (json.loads((d / "metrics.json").read_text()) for d in (whole, run))
    for split in want:
        for name in want[split]:
            assert have[split][name] == pytest.approx(want[split][name], rel=RTOL, abs=ATOL)
    assert cli("evaluate", run).exit_code == 0


@pytest.mark.slow  # a 3-fold cross-validation and its refit, in three sessions
def test_cross_validation_resumes_the_interrupted_fold_and_keeps_finished_ones(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = iris_config(tmp_path / "runs")
    config["training"] = {"epochs": 4, "batch_size": 16}
    config["validation"] = {"scheme": "kfold", "n_splits": 3, "test_split": 0.2}
    config["output"]["plots"] = False
    config["runtime"] = {"workers": 1}  # the interruption is patched into this process
    path = write_config(tmp_path / "iris.yaml", config)
    with monkeypatch.context() as patch:
        _interrupt(patch, epoch=2, where="0-1")
        result = cli("fit", path)
    assert result.exit_code == 130
    run = _only_run(tmp_path / "runs")
    first = run / "folds" / "0-0" / "model.keras"
    stamp = first.stat().st_mtime_ns
    assert not (run / "folds" / "0-1" / "metrics.json").exists()

    with monkeypatch.context() as patch:  # resumed, then the refit fails
        _interrupt(patch, epoch=1, where="iris-test", error=RuntimeError)
        assert cli("resume", run).exit_code == 1
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert (run / "folds" / "0-2" / "metrics.json").is_file()
    assert not (run / "model.keras").exists()

    result = cli("resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(run)
    assert first.stat().st_mtime_ns == stamp  # the finished fold was not retrained
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and "error" not in info
    assert [(r["was"], r["fold"], r["epochs_done"]) for r in info["resumes"]] == \
        [("interrupted", "0-1", 2), ("failed", "refit", 1)]
    assert len(read_history(run / "history.csv")["loss"]) == info["refit"]["epochs"]
    for name in ("0-0", "0-1", "0-2"):
        assert len(read_history(run / "folds" / name / "history.csv")["loss"]) == 4
        assert not (run / "folds" / name / "checkpoints" / "backup").exists()
    summary = json.loads((run / "cv_summary.json").read_text())
    assert summary["folds"] == ["0-0", "0-1", "0-2"]
    assert (run / "model.keras").is_file() and "test" in json.loads(
        (run / "metrics.json").read_text())


def test_ctrl_c_names_the_resume_command(cli, iris_yaml: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(schemes, "train_fold", interrupt)
    result = cli("fit", iris_yaml, "--json")
    assert result.exit_code == 130
    run = _only_run(iris_yaml.parent / "runs")
    data = json.loads(result.stdout)
    assert data["run_dir"] == str(run) and data["resume"] == f"kerastrain resume {run}"
    assert f"continue it with:\n  kerastrain resume {run}" in result.stderr


def test_resume_refuses_changed_data_or_splits(cli, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted run on a CSV file: once a value of the file changes, or the run's
    config would split the rows otherwise, resume refuses (exit 2) and leaves the run as
    it was; with the data as it was, it completes."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    data = tmp_path / "iris.csv"
    iris.to_csv(data, index=False)
    config = iris_config(tmp_path / "runs")
    config["data"] = {"source": {"type": "csv", "path": str(data)}, "target": "target"}
    config["training"]["epochs"] = 3
    config["output"]["plots"] = False
    with monkeypatch.context() as patch:
        _interrupt(patch, epoch=1)
        assert cli("fit", write_config(tmp_path / "c.yaml", config)).exit_code == 130
    run = _only_run(tmp_path / "runs")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    changed = iris.copy()
    changed.iloc[7, 0] += 0.1
    changed.to_csv(data, index=False)
    result = cli("resume", run)
    assert result.exit_code == 2, result.output
    assert "the data changed since the run started" in result.stderr
    iris.to_csv(data, index=False)

    saved = (run / "config.yaml").read_text()
    assert "seed: 0\n" in saved
    (run / "config.yaml").write_text(saved.replace("seed: 0\n", "seed: 1\n"))
    result = cli("resume", run)
    assert result.exit_code == 2, result.output
    assert "the splits made now differ from splits.json" in result.stderr
    (run / "config.yaml").write_text(saved)
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert {p for p in after if p.name != ".lock"} == {p for p in before if p.name != ".lock"}
    assert all(after[p] == before[p] for p in before if p.name != ".lock")  # as it was

    assert cli("resume", run).exit_code == 0
    assert json.loads((run / "run.json").read_text())["status"] == "completed"

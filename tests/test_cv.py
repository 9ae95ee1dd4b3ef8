"""Cross-validation end to end through the CLI: the seed's repeated 4-fold x 3 regression
run, its files checked against scikit-learn and against each other, and its refit model
used by `evaluate` and `predict`. Every run writes under tmp_path."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.model_selection import RepeatedKFold
from typer.testing import CliRunner

from conftest import iris_config, shared_by_workers, write_config
from invariants import assert_valid_plan
from kerastrain.cli import app
from kerastrain.data.splits import SplitPlan
from kerastrain.rundir import read_history

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _fit(config: Path, runs: Path, *overrides: str) -> tuple[Path, dict]:
    args = ["fit", str(config), "--json", "--set", f"output.runs_dir={runs}"]
    for override in overrides:
        args += ["--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Path(data["run_dir"]), data


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """configs/diabetes_kfold.yaml as shipped (repeated 4-fold x 3, refit), 2 epochs: every
    fold and the refit are built, trained, scored and saved as with 80."""
    def make(folder: Path) -> list:
        run_dir, data = _fit(ROOT / "configs" / "diabetes_kfold.yaml", folder / "runs",
                             "training.epochs=2")
        return [str(run_dir), data]

    run_dir, data = shared_by_workers(tmp_path_factory, "cv", make)  # once per session
    return Path(run_dir), data


@pytest.mark.slow  # trains Keras models
def test_repeated_4x3_completes_with_a_folder_per_fold(cv_run: tuple[Path, dict]) -> None:
    run_dir, data = cv_run
    names = [f"{r}-{f}" for r in range(3) for f in range(4)]
    assert sorted(p.name for p in (run_dir / "folds").iterdir()) == names
    for name in names:
        for file in ("history.csv", "metrics.json", "model.keras", "preprocessing.json"):
            assert (run_dir / "folds" / name / file).is_file(), (name, file)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed"
    best = {f: int(np.nanargmin(read_history(run_dir / "folds" / f / "history.csv")
                                ["val_loss"])) + 1 for f in names}  # lowest val_loss
    assert info["refit"]["best_epochs"] == best
    assert info["refit"]["epochs"] == max(1, round(sum(best.values()) / len(best)))
    assert len(read_history(run_dir / "history.csv")["loss"]) == info["refit"]["epochs"]
    assert info["refit"]["rows"] == 442 - len(json.loads((run_dir / "splits.json")
                                                          .read_text())["test"])
    assert info["refit"]["dropped_callbacks"] == ["EarlyStopping"]
    assert set(data["cv_summary"]["metrics"]) == {"loss", "mae"}
    assert set(data["metrics"]) == {"validation", "test"}
    assert (run_dir / "plots" / "learning_curves.png").is_file()


@pytest.mark.slow  # trains Keras models
def test_splits_json_equals_repeated_kfold(cv_run: tuple[Path, dict]) -> None:
    run_dir, _ = cv_run
    plan = SplitPlan.from_json(json.loads((run_dir / "splits.json").read_text()))
    assert_valid_plan(plan, 442)
    assert len(plan.test) == int(np.ceil(0.2 * 442))
    rows = np.setdiff1d(np.arange(442), plan.test)
    splitter = RepeatedKFold(n_splits=4, n_repeats=3, random_state=42)
    expected = [(rows[tr], rows[va]) for tr, va in splitter.split(np.zeros((len(rows), 1)))]
    for fold, (train, validation) in zip(plan.folds, expected, strict=True):
        assert np.array_equal(fold.train, train) and np.array_equal(fold.validation, validation)
        # the rows that steer (inner validation) are training rows, never the scored rows
        assert len(fold.inner) == int(np.ceil(0.2 * len(train)))


@pytest.mark.slow  # trains Keras models
def test_cv_summary_agrees_with_the_fold_metrics(cv_run: tuple[Path, dict]) -> None:
    run_dir, _ = cv_run
    summary = json.loads((run_dir / "cv_summary.json").read_text())
    for metric, entry in summary["metrics"].items():
        values = [json.loads((run_dir / "folds" / f / "metrics.json").read_text())
                  ["validation"][metric] for f in summary["folds"]]
        assert entry["per_fold"] == dict(zip(summary["folds"], values, strict=True))
        assert entry["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert entry["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        half = stats.t.ppf(0.975, 11) * np.std(values, ddof=1) / np.sqrt(12)
        assert entry["ci95"] == pytest.approx([np.mean(values) - half, np.mean(values) + half])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation"]["mae"] == summary["metrics"]["mae"]["mean"]


@pytest.mark.slow  # trains Keras models
def test_fold_preprocessing_comes_from_its_training_rows_only(cv_run: tuple[Path, dict]
                                                              ) -> None:
    run_dir, _ = cv_run
    plan = SplitPlan.from_json(json.loads((run_dir / "splits.json").read_text()))
    diabetes = load_diabetes()
    column = list(diabetes.feature_names).index("bmi")
    values = diabetes.data[:, column]
    for fold in plan.folds[:4]:
        saved = json.loads((run_dir / "folds" / fold.name / "preprocessing.json").read_text())
        bmi = next(f for f in saved["features"] if f["name"] == "bmi")
        assert bmi["mean"] == pytest.approx(np.mean(values[fold.fit_rows]), abs=1e-12)
        assert bmi["std"] == pytest.approx(np.std(values[fold.fit_rows]), abs=1e-12)
        seen_more = np.concatenate([fold.train, fold.validation])
        assert abs(bmi["mean"] - np.mean(values[seen_more])) > 1e-9
    root = json.loads((run_dir / "preprocessing.json").read_text())
    bmi = next(f for f in root["features"] if f["name"] == "bmi")
    rest = np.setdiff1d(np.arange(442), plan.test)
    assert bmi["mean"] == pytest.approx(np.mean(values[rest]), abs=1e-12)


@pytest.mark.slow  # trains Keras models
def test_learning_curves_are_averaged_across_folds(cv_run: tuple[Path, dict]) -> None:
    run_dir, data = cv_run
    folds = data["cv_summary"]["folds"]
    averaged = read_history(run_dir / "cv_history.csv")
    histories = [read_history(run_dir / "folds" / f / "history.csv") for f in folds]
    for key in ("heldout_mae", "val_mae", "mae"):
        assert averaged[key][0] == pytest.approx(np.mean([h[key][0] for h in histories]))
    assert averaged["folds"][0] == 12


@pytest.mark.slow  # trains Keras models
def test_refit_model_evaluates_and_predicts(cv_run: tuple[Path, dict], tmp_path: Path) -> None:
    run_dir, data = cv_run
    result = runner.invoke(app, ["evaluate", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["split"] == "test" and scored["rows"] == 89
    assert scored["metrics"]["mae"] == pytest.approx(data["metrics"]["test"]["mae"], rel=1e-4)
    diabetes = load_diabetes()
    rows, labelled = tmp_path / "new.csv", tmp_path / "labelled.csv"
    for path, target in ((rows, False), (labelled, True)):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(diabetes.feature_names + (["target"] if target else []))
            writer.writerows(np.column_stack([diabetes.data[:20], diabetes.target[:20]])
                             .tolist() if target else diabetes.data[:20].tolist())
    output = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(run_dir), str(rows), "--output", str(output),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    lines = output.read_text().splitlines()
    assert lines[0] == "target" and len(lines) == 21
    predicted = np.array([float(v) for v in lines[1:]])
    result = runner.invoke(app, ["evaluate", str(run_dir), "--data", str(labelled), "--json"])
    assert result.exit_code == 0, result.output
    mae = np.mean(np.abs(predicted - diabetes.target[:20]))  # the values predict wrote
    assert json.loads(result.stdout)["metrics"]["mae"] == pytest.approx(mae, rel=1e-4)


@pytest.mark.slow  # trains Keras models
def test_without_refit_there_is_no_root_model_and_evaluate_says_why(tmp_path: Path) -> None:
    run_dir, data = _fit(ROOT / "configs" / "iris_mlp.yaml", tmp_path, "training.epochs=1",
                         "validation.scheme=kfold", "validation.n_splits=2",
                         "validation.refit=false", "runtime.workers=1")
    assert not (run_dir / "model.keras").exists()
    assert len(list((run_dir / "folds").iterdir())) == 2
    info = json.loads((run_dir / "run.json").read_text())
    assert info["model"] is None and "refit" in info["no_model_reason"]
    assert any("never scored" in w for w in info["warnings"])
    assert "test" not in data["metrics"]
    assert "Stratified" in data["cv_summary"]["splitter"]
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 2
    assert "kept no final model" in result.output


@pytest.mark.slow  # trains Keras models
def test_holdout_still_writes_its_root_files_and_no_folds(tmp_path: Path) -> None:
    run_dir, data = _fit(ROOT / "configs" / "diabetes_regression.yaml", tmp_path,
                         "training.epochs=1")
    for file in ("model.keras", "history.csv", "metrics.json", "preprocessing.json",
                 "splits.json", "summary.txt"):
        assert (run_dir / file).is_file(), file
    assert not (run_dir / "folds").exists() and not (run_dir / "cv_summary.json").exists()
    assert set(data["metrics"]) == {"validation", "test"} and "cv_summary" not in data


@pytest.mark.parametrize("module", ["kerastrain.cli", "kerastrain.data.splits",
                                    "kerastrain.data.leakage", "kerastrain.config"])
def test_split_modules_do_not_import_tensorflow(module: str) -> None:
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.slow  # a 3-fold fit with inner validation rows
def test_val_scores_come_from_the_inner_rows_and_metrics_from_the_scored_rows(
        tmp_path: Path) -> None:
    """In a fold with an inner validation split, Keras's val_* (history.csv) is the fold's
    model on its inner rows, and the fold's metrics.json is the same model on its scored
    rows (splits.json), once, after training; heldout_* follows the scored rows too."""
    from kerastrain import _keras
    from kerastrain.config import load_config
    from kerastrain.data.graphdata import load_preprocessor
    from kerastrain.data.sources import load_source
    from kerastrain.models.model import evaluate_model

    config = tmp_path / "c.yaml"
    cfg = iris_config(tmp_path / "runs")
    cfg["training"] = {"epochs": 2, "batch_size": 16}
    cfg["validation"] = {"scheme": "kfold", "n_splits": 3, "test_split": 0.2,
                         "validation_split": 0.25, "refit": False, "leakage": "ignore"}
    cfg["output"]["plots"] = False
    cfg["runtime"] = {"workers": 1}
    run_dir, _ = _fit(write_config(config, cfg), tmp_path / "runs")
    loaded = load_config(run_dir / "config.yaml")
    table = load_source(loaded.config.data.source, loaded.config.seed)
    keras = _keras.keras()
    for fold in json.loads((run_dir / "splits.json").read_text())["folds"]:
        place = run_dir / "folds" / fold["name"]
        pre = load_preprocessor(json.loads((place / "preprocessing.json").read_text()))
        model = keras.saving.load_model(place / "model.keras")

        def score(rows: list[int], pre=pre, model=model) -> dict[str, float]:
            index = np.array(rows)
            return evaluate_model(model, pre.transform_x(table, index),
                                  pre.transform_y(table, index), 16)

        history = read_history(place / "history.csv")
        inner, scored = score(fold["inner_validation"]), score(fold["validation"])
        assert history["val_loss"][-1] == pytest.approx(inner["loss"], rel=1e-5)
        assert history["heldout_loss"][-1] == pytest.approx(scored["loss"], rel=1e-5)
        kept = json.loads((place / "metrics.json").read_text())["validation"]
        assert kept == pytest.approx(scored, rel=1e-5)
        assert inner["loss"] != pytest.approx(scored["loss"], rel=1e-3)  # told apart

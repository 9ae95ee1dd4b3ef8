"""`kerastrain compare`: the corrected resampled t-test on two K-fold runs of the same
splits, checked against the formula computed here by hand; refusals with the reason."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from scipy import stats

from conftest import Cli, heavy_modules_after, iris_config, shared_by_workers, write_config
from kerastrain.compare import corrected_t_test, metric_direction


def _kfold_run(tmp: Path, name: str, learning_rate: float, **validation) -> Path:
    config = iris_config(tmp / "runs", name=name)
    config["compile"]["optimizer"]["learning_rate"] = learning_rate
    config["training"] = {"epochs": 3, "batch_size": 16}
    config["validation"] = {"scheme": "kfold", "n_splits": 3, "refit": False,
                            "leakage": "ignore", **validation}
    config["output"] = {"runs_dir": str(tmp / "runs"), "plots": False, "checkpoints": False}
    config["runtime"] = {"workers": 1}  # the folds in this process: no TensorFlow to start
    result = Cli()("fit", write_config(tmp / f"{name}.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


@pytest.fixture(scope="module")
def kfold_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two iris 3-fold runs on the same splits (same seed), different learning rates
    (trained once per session; the tests that change one change a copy)."""
    made = shared_by_workers(tmp_path_factory, "compare", lambda tmp: [
        str(_kfold_run(tmp, "iris-a", 0.01)), str(_kfold_run(tmp, "iris-b", 0.05))])
    return Path(made[0]), Path(made[1])


def _by_hand(run_a: Path, run_b: Path, metric: str) -> dict:
    a = json.loads((run_a / "cv_summary.json").read_text())["metrics"][metric]["per_fold"]
    b = json.loads((run_b / "cv_summary.json").read_text())["metrics"][metric]["per_fold"]
    folds = json.loads((run_a / "splits.json").read_text())["folds"]
    d = [b[f["name"]] - a[f["name"]] for f in folds]
    j = len(d)
    mean = sum(d) / j
    var = sum((x - mean) ** 2 for x in d) / (j - 1)
    ratio = sum(len(f["validation"]) / len(f["train"]) for f in folds) / j
    se = math.sqrt((1 / j + ratio) * var)
    t = mean / se
    half = stats.t.ppf(0.975, j - 1) * se
    return {"d": d, "mean": mean, "t": t, "p": 2 * stats.t.sf(abs(t), j - 1),
            "ci95": [mean - half, mean + half], "ratio": ratio}


@pytest.mark.parametrize("metric", ["loss", "accuracy"])
def test_corrected_t_matches_the_formula(cli, kfold_runs, metric) -> None:
    run_a, run_b = kfold_runs
    result = cli("compare", run_a, run_b, "--metric", metric, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    want = _by_hand(run_a, run_b, metric)
    assert got["folds"] == ["0-0", "0-1", "0-2"]
    assert got["differences"] == pytest.approx(want["d"])
    assert got["mean_difference"] == pytest.approx(want["mean"])
    assert got["test_train_ratio"] == pytest.approx(want["ratio"])
    assert got["test_train_ratio"] == pytest.approx(0.5, abs=0.02)  # 3 folds: 50 vs 100 rows
    assert got["t"] == pytest.approx(want["t"])
    assert got["p_value"] == pytest.approx(want["p"])
    assert got["ci95"] == pytest.approx(want["ci95"])
    assert got["dof"] == 2
    assert got["direction"] == ("lower" if metric == "loss" else "higher")
    lower_is_better = metric == "loss"
    b_better = (want["mean"] < 0) == lower_is_better
    assert got["better"] == ("B" if b_better else "A")
    assert got["significant"] == (want["p"] < 0.05)


def _says(cli, run_a: Path, run_b: Path, *args: str) -> tuple[str, dict]:
    """`compare`'s words and its JSON for the same runs."""
    words = cli("compare", run_a, run_b, *args)
    assert words.exit_code == 0, words.output
    data = cli("compare", run_a, run_b, *args, "--json")
    assert data.exit_code == 0, data.output
    return words.stdout, json.loads(data.stdout)


def _assert_words_match(words: str, data: dict) -> None:
    flat = " ".join(words.split())  # as wrapped for the terminal
    assert ("the difference is significant at the 5% level" in flat) == data["significant"]
    assert ("not distinguishable at the 5% level" in flat) == (not data["significant"])


def test_default_metric_is_loss_and_says_it_in_words(cli, kfold_runs) -> None:
    run_a, run_b = kfold_runs
    words, data = _says(cli, run_a, run_b)
    assert data["metric"] == "loss"
    assert "loss per fold" in words
    assert "lower is better" in words
    assert "p = " in words
    _assert_words_match(words, data)


def _with_per_fold(run: Path, tmp_path: Path, name: str, metric: str,
                   shifts: list[float]) -> Path:
    """A copy of `run` whose folds scored `metric` shifted by `shifts`, fold by fold."""
    copy = Path(shutil.copytree(run, tmp_path / name))
    summary = json.loads((copy / "cv_summary.json").read_text())
    per_fold = summary["metrics"][metric]["per_fold"]
    for fold, shift in zip(summary["folds"], shifts, strict=True):
        per_fold[fold] += shift
    (copy / "cv_summary.json").write_text(json.dumps(summary))
    return copy


@pytest.mark.parametrize("shifts, significant", [
    ([-0.2, -0.201, -0.199], True),   # B lower on every fold by about the same: sure
    ([-0.2, 0.15, 0.01], False),      # B lower on average, but the folds disagree
], ids=["consistent", "noisy"])
def test_the_words_say_what_the_test_found(cli, kfold_runs, tmp_path, shifts,
                                           significant) -> None:
    run_a, _ = kfold_runs
    run_b = _with_per_fold(run_a, tmp_path, "b", "loss", shifts)
    words, data = _says(cli, run_a, run_b)
    assert data["significant"] is significant and data["better"] == "B"
    assert (data["p_value"] < 0.05) is significant
    _assert_words_match(words, data)


def test_a_run_against_itself_is_identical(cli, kfold_runs, tmp_path) -> None:
    run_a, _ = kfold_runs
    copy = shutil.copytree(run_a, tmp_path / run_a.name)  # the same scores, another run
    got = json.loads(cli("compare", run_a, copy, "--json").stdout)
    assert got["t"] == 0.0 and got["p_value"] == 1.0 and got["better"] is None
    assert "exactly the same" in got["statement"]


def test_the_same_run_twice_is_exit_2(cli, kfold_runs) -> None:
    run_a, _ = kfold_runs
    for again in (run_a, run_a.parent / ".." / run_a.parent.name / run_a.name):
        result = cli("compare", run_a, again)
        assert result.exit_code == 2, result.output
        assert f"A and B are the same run ({run_a})" in result.stderr


def test_different_splits_are_refused(cli, kfold_runs, tmp_path) -> None:
    run_a, _ = kfold_runs
    other = _kfold_run(tmp_path, "iris-c", 0.01, seed=7)
    result = cli("compare", run_a, other)
    assert result.exit_code == 2
    assert "split the rows differently" in result.stderr
    assert "Traceback" not in result.output


def _copy(run: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(run, tmp_path / name))


def test_refusals_name_the_reason(cli, kfold_runs, tmp_path, iris_run) -> None:
    run_a, run_b = kfold_runs
    result = cli("compare", run_a, iris_run)
    assert result.exit_code == 2 and "not a cross-validation run" in result.stderr

    running = _copy(run_b, tmp_path, "running")
    info = json.loads((running / "run.json").read_text())
    (running / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    result = cli("compare", run_a, running)
    assert result.exit_code == 2 and "'interrupted'" in result.stderr

    renamed = _copy(run_b, tmp_path, "renamed")
    splits = json.loads((renamed / "splits.json").read_text())
    splits["folds"][0]["name"] = "1-0"
    (renamed / "splits.json").write_text(json.dumps(splits))
    result = cli("compare", run_a, renamed)
    assert result.exit_code == 2 and "different folds" in result.stderr

    result = cli("compare", run_a, run_b, "--metric", "acuracy", "--json")
    assert result.exit_code == 2
    assert "Did you mean 'accuracy'?" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2

    result = cli("compare", run_a, tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such run directory" in result.stderr


def test_zero_variance() -> None:
    constant = corrected_t_test([0.1, 0.1, 0.1], 0.5)
    assert constant["t"] is None and constant["p"] is None
    assert constant["ci95"] == pytest.approx([0.1, 0.1])
    same = corrected_t_test([0.0, 0.0, 0.0], 0.5)
    assert same["t"] == 0.0 and same["p"] == 1.0


@pytest.mark.parametrize(("name", "direction"), [
    ("loss", "lower"), ("mae", "lower"), ("mean_squared_error", "lower"),
    ("sparse_categorical_crossentropy", "lower"), ("main_output_loss", "lower"),
    ("hinge", "lower"), ("accuracy", "higher"), ("auc", "higher"), ("precision", "higher"),
    ("f1_score", "higher"), ("sparse_categorical_accuracy", "higher")])
def test_metric_direction(name, direction) -> None:
    assert metric_direction(name) == (direction, True)


def test_unknown_metric_is_assumed_lower() -> None:
    assert metric_direction("widgets") == ("lower", False)


def test_compare_imports_no_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys, kerastrain.compare, kerastrain.runs, kerastrain.starter, "
            "kerastrain.schema_export; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_compare_command_imports_no_slow_package(kfold_runs, tmp_path) -> None:
    """The whole command, in a fresh interpreter: no TensorFlow, Keras, matplotlib or
    scikit-learn, and of SciPy only `scipy.special` (Student's t)."""
    run_a, run_b = kfold_runs
    code, heavy = heavy_modules_after(tmp_path, "compare", run_a, run_b)
    assert code == 0
    assert set(heavy) <= {"scipy"}  # no scipy.stats (one of HEAVY), scipy.special at most


def _cv_run(tmp: Path, name: str, metric: str, per_fold: list[float]) -> Path:
    """A completed 3-fold run as `fit` leaves it, reduced to what `compare` reads."""
    path = tmp / name
    path.mkdir()
    folds = [f"0-{i}" for i in range(len(per_fold))]
    (path / "run.json").write_text(json.dumps({"status": "completed"}))
    (path / "cv_summary.json").write_text(json.dumps({
        "splitter": "KFold", "folds": folds,
        "metrics": {metric: {"per_fold": dict(zip(folds, per_fold, strict=True))}}}))
    rows = list(range(30))
    (path / "splits.json").write_text(json.dumps({"test": [], "folds": [
        {"name": fold, "validation": rows[i * 10:(i + 1) * 10],
         "train": rows[:i * 10] + rows[(i + 1) * 10:]} for i, fold in enumerate(folds)]}))
    return path


def test_float_noise_is_no_difference(cli, tmp_path) -> None:
    """Identical accuracies, one written back through float32 (1.19e-08 off): no
    difference, not a win by 1.192e-08."""
    scores = [0.93333334, 0.9, 0.96666664]
    noisy = [scores[0] + 1.1920929e-08, scores[1], scores[2] - 1.1920929e-08]
    run_a = _cv_run(tmp_path, "a", "accuracy", scores)
    run_b = _cv_run(tmp_path, "b", "accuracy", noisy)
    got = json.loads(cli("compare", run_a, run_b, "--metric", "accuracy", "--json").stdout)
    assert got["better"] is None and got["mean_difference"] == 0.0
    assert got["p_value"] == 1.0 and not got["significant"]
    text = cli("compare", run_a, run_b, "--metric", "accuracy")
    assert text.exit_code == 0
    assert "no difference" in text.stdout and "better than" not in text.stdout
    real = _cv_run(tmp_path, "c", "accuracy", [s + 0.00002 for s in scores])
    got = json.loads(cli("compare", run_a, real, "--metric", "accuracy", "--json").stdout)
    assert got["better"] == "B"  # a small difference that is no rounding still counts


def test_one_number_format_per_output(cli, tmp_path) -> None:
    """Scores and differences share one number of decimals, in the table and in the
    sentence (not `mean loss A 0.13, B 0.1521`); t and p keep their own."""
    import re

    run_a = _cv_run(tmp_path, "a", "loss", [0.13, 0.12, 0.14])
    run_b = _cv_run(tmp_path, "b", "loss", [0.1521, 0.1432, 0.1611])
    result = cli("compare", run_a, run_b)
    assert result.exit_code == 0, result.output
    text = re.sub(r"\b[tp] = \S+", "", result.stdout)  # t and p: their own formats
    text = re.sub(r"\b\d+-\d+\b", "", text)  # fold names (0-1)
    numbers = re.findall(r"\d+\.\d+|\b\d+\b(?![.-])", text.replace(str(tmp_path), ""))
    numbers = [n for n in numbers if n not in {"95", "5", "3"}]  # 95% CI, 5% level, 3 folds
    assert numbers and {len(n.split(".")[1]) if "." in n else 0 for n in numbers} == {4}, \
        result.stdout
    run_c = _cv_run(tmp_path, "c", "loss", [0.13, 0.12, 0.14003])
    result = cli("compare", run_a, run_c)  # a small real difference: more decimals, still one
    numbers = re.findall(r"\d+\.\d+", re.sub(r"\b[tp] = \S+", "", result.stdout))
    decimals = {len(n.split(".")[1]) for n in numbers}
    assert len(decimals) == 1 and decimals.pop() > 4, result.stdout
    assert "+0.00003" in result.stdout


def _repeated_run(tmp: Path, name: str, per_fold: list[float]) -> Path:
    """A completed repeated 3-fold x 3 run on 30 rows, as `compare` reads it: each repeat
    partitions the rows anew (rows shifted by the repeat), 20 training rows, 10 scored."""
    path = tmp / name
    path.mkdir()
    folds = [f"{r}-{i}" for r in range(3) for i in range(3)]
    (path / "run.json").write_text(json.dumps({"status": "completed"}))
    (path / "cv_summary.json").write_text(json.dumps({
        "splitter": "RepeatedKFold", "folds": folds,
        "metrics": {"loss": {"per_fold": dict(zip(folds, per_fold, strict=True))}}}))
    entries = []
    for fold in folds:
        r, i = map(int, fold.split("-"))
        order = [(k + 7 * r) % 30 for k in range(30)]
        scored = order[i * 10:(i + 1) * 10]
        entries.append({"name": fold, "validation": scored,
                        "train": [k for k in order if k not in scored]})
    (path / "splits.json").write_text(json.dumps({"test": [], "folds": entries}))
    return path


@pytest.mark.parametrize(("shift", "significant"), [(0.05, True), (0.002, False)])
def test_repeated_kfold_is_tested_over_every_fold_and_said_in_words(
        cli, tmp_path, shift: float, significant: bool) -> None:
    """On repeated K-fold the test pairs all n_splits x n_repeats folds (J = 9) with the
    correction n_test/n_train = 10/20; its t and p are those computed here by hand, and
    the words say what the p-value says."""
    base = [0.30, 0.34, 0.29, 0.33, 0.31, 0.35, 0.28, 0.32, 0.36]
    noise = [0.004, -0.003, 0.002, -0.004, 0.003, -0.002, 0.001, -0.001, 0.0]
    run_a = _repeated_run(tmp_path, "a", base)
    run_b = _repeated_run(tmp_path, "b", [b - shift + e for b, e in zip(base, noise,
                                                                      strict=True)])
    words, data = _says(cli, run_a, run_b)
    diffs = [b - a for a, b in zip(base, [b - shift + e for b, e in zip(base, noise,
                                                                         strict=True)],
                                   strict=True)]
    mean = sum(diffs) / 9
    var = sum((d - mean) ** 2 for d in diffs) / 8
    t = mean / math.sqrt((1 / 9 + 10 / 20) * var)
    p = 2 * stats.t.sf(abs(t), df=8)
    assert data["test_train_ratio"] == pytest.approx(0.5)
    assert data["t"] == pytest.approx(t, rel=1e-9) and data["p_value"] == pytest.approx(p)
    assert data["significant"] is bool(p < 0.05) is significant and data["better"] == "B"
    _assert_words_match(words, data)

"""`validate` makes every object `fit` will make, and checks what Keras checks only once
training runs: callbacks taken through their first epochs, every loss and metric against
the target and the output, and every class in the training rows. Each refusal is exit 2 at
the config key and line, and leaves no run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Cli
from test_broken_inputs import refused

IRIS = """\
name: iris-check
seed: 0
data:
  source: {type: sklearn, name: iris}
  target: target
model:
  layers:
    - {type: Dense, units: 8, activation: relu}
    - {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
training: {epochs: 2, batch_size: 16}
validation: {validation_split: 0.2, test_split: 0.2}
output: {runs_dir: RUNS}
"""
LOSS_LINE, METRICS_LINE, CALLBACK_LINE = 12, 13, 18


def iris_yaml(tmp_path: Path, *callbacks: str) -> Path:
    text = IRIS.replace("RUNS", str(tmp_path / "runs"))
    if callbacks:
        text += "callbacks:\n" + "".join(f"  - {c}\n" for c in callbacks)
    path = tmp_path / "iris.yaml"
    path.write_text(text)
    return path


def validate_refuses(cli: Cli, config: Path, line: int | None, *texts: str,
                     sets: tuple[str, ...] = ()) -> None:
    args = [a for s in sets for a in ("--set", s)]
    where = f"{config}:{line}  " if line else ""
    refused(cli("validate", config, *args), where + texts[0], *texts[1:])
    assert not (config.parent / "runs").exists()


# -- callbacks: made, and taken through their first epochs -------------------------------------

CALLBACKS = {
    "min_delta_text": ("{type: EarlyStopping, min_delta: abc}", "callbacks.0: Keras rejected "
                       "EarlyStopping(min_delta='abc')"),
    "unknown_mode": ("{type: EarlyStopping, mode: maxx}", "callbacks.0: Keras would not take "
                     "EarlyStopping as written: EarlyStopping mode 'maxx' is unknown"),
    "patience_text": ("{type: EarlyStopping, patience: abc}", "callbacks.0: Keras rejected "
                      "EarlyStopping(patience='abc') on its first epochs: TypeError"),
    "plateau_factor": ("{type: ReduceLROnPlateau, factor: 2}", "callbacks.0: Keras rejected "
                       "ReduceLROnPlateau(factor=2): ReduceLROnPlateau does not support a "
                       "factor >= 1.0"),
    "checkpoint_suffix": ("{type: ModelCheckpoint, filepath: /somewhere/best.txt}",
                          "callbacks.0: Keras rejected ModelCheckpoint(filepath='/somewhere/"
                          "best.txt'): The filepath provided must end in `.keras`"),
    "scheduler_without_schedule": ("{type: LearningRateScheduler}", "callbacks.0: "
                                   "LearningRateScheduler takes `schedule`, a Python function"),
    "lambda_callback": ("{type: LambdaCallback, on_epoch_end: 'print(1)'}",
                        "callbacks.0.on_epoch_end: LambdaCallback takes its on_* arguments, a "
                        "Python function"),
}


@pytest.mark.parametrize("case", CALLBACKS, ids=list(CALLBACKS))
def test_validate_makes_every_callback(cli: Cli, tmp_path: Path, case: str) -> None:
    callback, message = CALLBACKS[case]
    validate_refuses(cli, iris_yaml(tmp_path, callback), CALLBACK_LINE, message)


def test_a_schedule_written_as_text_is_never_evaluated(cli: Cli, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A string where Keras wants a function is refused with what to use instead; nothing
    of it runs."""
    marker = tmp_path / "ran"
    config = iris_yaml(tmp_path, "{type: LearningRateScheduler, schedule: \"__import__('pathlib')"
                                 f".Path('{marker}').touch()\"}}")
    validate_refuses(cli, config, CALLBACK_LINE, "callbacks.0.schedule: LearningRateScheduler",
                     "never evaluates a config's text as code", "ExponentialDecay")
    assert not marker.exists()


def test_good_callbacks_pass_and_write_nowhere(cli: Cli, tmp_path: Path) -> None:
    """The probe's files (a checkpoint, a CSV log) go to a throwaway folder, even for an
    absolute path."""
    outside = tmp_path / "elsewhere" / "best.keras"
    config = iris_yaml(tmp_path, "{type: EarlyStopping, monitor: val_accuracy, patience: 2, "
                       "restore_best_weights: true}",
                       f"{{type: ModelCheckpoint, filepath: {outside}, save_best_only: true}}",
                       "{type: CSVLogger}", "{type: ReduceLROnPlateau, patience: 0}")
    result = cli("validate", config)
    assert result.exit_code == 0, result.output
    assert not outside.parent.exists() and not (tmp_path / "runs").exists()


# -- losses and metrics against the target and the output --------------------------------------

TARGET_FIT = {
    "binary_ce_on_3_classes": ((f"compile.loss={'binary_crossentropy'}",), LOSS_LINE,
                               "compile.loss: binary_crossentropy compares each output value "
                               "with one 0/1 label per row", "sparse_categorical_crossentropy"),
    "mse_on_3_classes": (("compile.loss=mse",), LOSS_LINE, "compile.loss: mse compares",
                         "the target has 3 classes coded as integers"),
    "mae_on_3_classes": (("compile.loss=mae",), LOSS_LINE, "compile.loss: mae compares"),
    "auc_on_3_classes": (("compile.metrics=[accuracy, AUC]",), METRICS_LINE,
                         "compile.metrics.1: AUC compares", "Use accuracy or "
                         "sparse_categorical_accuracy"),
    "categorical_ce_on_integer_labels": (("compile.metrics=[categorical_accuracy]",),
                                         METRICS_LINE, "compile.metrics.0: categorical_accuracy "
                                         "takes one-hot labels"),
    "sparse_ce_on_one_hot": (("data.target_encoding=one_hot",), LOSS_LINE,
                             "compile.loss: sparse_categorical_crossentropy takes integer class "
                             "labels, but the target is one-hot"),
}


@pytest.mark.parametrize("case", TARGET_FIT, ids=list(TARGET_FIT))
def test_every_loss_and_metric_fits_the_target(cli: Cli, tmp_path: Path, case: str) -> None:
    """At compile.loss or compile.metrics.<i> (with --set, at the override), not at the
    layer, and never a Keras traceback."""
    sets, line, *texts = TARGET_FIT[case]
    config = iris_yaml(tmp_path)
    on_override = any(s.split("=")[0] in texts[0] for s in sets)
    if on_override:  # a --set key is placed at the override, not at a line
        validate_refuses(cli, config, None, f"--set {sets[0]}  " + texts[0], *texts[1:],
                         sets=sets)
    else:
        validate_refuses(cli, config, line, *texts, sets=sets)


def test_sparse_ce_on_a_one_unit_binary_classifier(cli: Cli) -> None:
    """The seed's linear classifier (1 unit, 2 classes): sparse CE would crash mid-training
    on the first label 1; validate says so at the loss and names binary_crossentropy."""
    config = Path(__file__).parent.parent / "configs" / "linear_classifier.yaml"
    refused(cli("validate", config, "--set", "compile.loss=sparse_categorical_crossentropy"),
            "compile.loss: sparse_categorical_crossentropy needs one output unit per class",
            "With 1 unit use binary_crossentropy")


REGRESSION = """\
name: reg
seed: 0
data:
  source: {type: synthetic, name: regression, n_samples: 200}
  target: target
model:
  layers:
    - {type: Dense, units: 1}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
output: {runs_dir: RUNS}
"""


@pytest.mark.parametrize("task, message", [
    ("auto", "scores class labels, but the target holds continuous values"),
    ("regression", "scores class labels, but the target is a regression target"),
])
def test_sparse_ce_on_a_continuous_target(cli: Cli, tmp_path: Path, task: str,
                                          message: str) -> None:
    """Not "200 classes": the loss does not fit a continuous target, and what to use."""
    config = tmp_path / "reg.yaml"
    config.write_text(REGRESSION.replace("RUNS", str(tmp_path / "runs")))
    args = ("--set", f"data.task={task}")
    refused(cli("validate", config, *args), f"{config}:11  compile.loss: "
            f"sparse_categorical_crossentropy {message}", "mse")
    assert not (tmp_path / "runs").exists()


# -- every class in the training rows ---------------------------------------------------------

def test_time_order_that_leaves_a_class_out(cli: Cli, tmp_path: Path) -> None:
    """Sorted by petal length, the training rows hold no virginica: said at time_order,
    naming the class, not as a layer-width problem."""
    config = iris_yaml(tmp_path)
    result = cli("validate", config, "--set", "validation.time_order=petal length (cm)",
                 "--set", "validation.validation_split=0.3")
    refused(result, "validation.time_order: in time order, the training rows",
            "hold no row of class 'virginica' of 'target'")
    assert "model.layers" not in result.stderr


def test_probing_the_callbacks_leaves_the_first_folds_model_as_built(tmp_path) -> None:
    """validate runs each callback's first epochs on the model the first fold then trains:
    a ReduceLROnPlateau that cuts the rate there must not cut it for training."""
    from conftest import iris_config, write_config
    from kerastrain.config import load_config
    from kerastrain.training.check import check

    config = iris_config(tmp_path / "runs", callbacks=[
        {"type": "ReduceLROnPlateau", "monitor": "val_loss", "patience": 0, "factor": 0.1}])
    checked = check(load_config(write_config(tmp_path / "c.yaml", config)))
    model, _ = checked.take_model(checked.experiment.plan.folds[0])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    assert not model.stop_training


def test_a_runs_dir_that_cannot_be_made_is_refused_at_its_line(cli: Cli, tmp_path: Path) -> None:
    """validate checks output.runs_dir (a file in the way), and fit refuses it the same way:
    the key at its line, before any data or training."""
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    config = tmp_path / "iris.yaml"
    config.write_text(IRIS.replace("RUNS", str(blocker / "runs")))
    line = IRIS.splitlines().index("output: {runs_dir: RUNS}") + 1
    for command in ("validate", "fit"):
        refused(cli(command, config), f"{config}:{line}  output.runs_dir: {blocker / 'runs'}: "
                f"cannot make a run directory there (a file is in the way: {blocker})")
    assert blocker.read_text() == "x"
    refused(cli("validate", iris_yaml(tmp_path), "--set", f"output.runs_dir={blocker}"),
            f"--set output.runs_dir={blocker}  output.runs_dir: {blocker}: cannot make a run "
            "directory there (a file is in the way")


def test_the_fingerprint_hashed_beside_the_checks_is_the_same(tmp_path: Path,
                                                               monkeypatch) -> None:
    """`fit` hashes the data fingerprint in a thread while the checks go on (`hash_ahead`);
    the digest is the one hashed in line, and a failure in the thread surfaces where the
    fingerprint is read."""
    from conftest import iris_config, write_config
    from kerastrain.config import load_config
    from kerastrain.data import table as table_module
    from kerastrain.errors import DataError
    from kerastrain.training import check as check_module

    loaded = load_config(write_config(tmp_path / "c.yaml", iris_config(tmp_path / "runs")))
    ahead = check_module.check(loaded, hash_ahead=True)
    assert ahead.hashing is not None
    inline = check_module.check(loaded)
    assert inline.hashing is None
    experiment = inline.experiment
    expected = table_module.fingerprint_columns(experiment.table, experiment.used_columns)
    assert ahead.fingerprint == inline.fingerprint == expected

    def cut_short(*args):
        raise DataError("x.npy: the file ends before its last row")

    monkeypatch.setattr("kerastrain.experiment.fingerprint_columns", cut_short)
    failing = check_module.check(loaded, hash_ahead=True)
    with pytest.raises(DataError, match="ends before its last row"):
        assert failing.fingerprint

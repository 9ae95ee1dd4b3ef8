"""`kerastrain init`: a commented starter config that runs as written.

The starter uses one of scikit-learn's bundled sets, so it runs offline, and a small MLP
with early stopping; every section carries a comment saying what it is and what else it
takes, so that editing it is the way to learn the format. No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kerastrain.errors import UserError, did_you_mean

Task = Literal["classification", "regression"]


class InitError(UserError):
    """A starter config that cannot be written (unknown set, task mismatch, file exists)."""


@dataclass(frozen=True)
class Dataset:
    """What a starter needs to know about a bundled set."""

    rows: int
    features: int
    classes: int  # 0: a regression target
    about: str


DATASETS = {
    "iris": Dataset(150, 4, 3, "iris flowers: 4 measurements -> one of 3 species"),
    "wine": Dataset(178, 13, 3, "wines: 13 chemical measurements -> one of 3 cultivars"),
    "breast_cancer": Dataset(569, 30, 2, "breast tumours: 30 cell measurements -> malignant "
                                         "or benign"),
    "digits": Dataset(1797, 64, 10, "8x8 images of handwritten digits (pixels 0..16) -> "
                                    "the digit"),
    "diabetes": Dataset(442, 10, 0, "diabetes patients: 10 measurements -> disease "
                                    "progression after one year"),
}
DEFAULT_DATASET = {"classification": "iris", "regression": "diabetes"}

_HEAD = """\
# A kerastrain starter: {about}
# ({rows} rows, scikit-learn's bundled `{dataset}` set, so it runs offline). It runs as written:
#   kerastrain validate {file}    # every check fit makes, without training
#   kerastrain fit {file}
#   kerastrain fit {file} --set training.epochs=100   # any key, by its dotted path
# Keras names are used throughout (layers, optimizers, losses, metrics, callbacks):
# `kerastrain list layers` (or optimizers, losses, metrics, callbacks) shows them.
# Editors: run `kerastrain schema > kerastrain.schema.json` and make this file's first line
# `# yaml-language-server: $schema=kerastrain.schema.json` to have it checked as you type.
{name_line}# runs go to <runs_dir>/<name>-<time>-<id>
seed: 0                         # seeds Python, NumPy and TensorFlow; omit to draw one
data:
  source: {{type: sklearn, name: {dataset}}}   # also: csv, parquet, npz, npy (with path:)
  target: target                # the column to predict
  task: {task}
  preprocessing:
{preprocessing}
"""

_CLASSIFIER = """\
model:
  layers:                       # a Keras Sequential stack; the input shape comes from the data
    - {{type: Dense, units: {units}, activation: relu}}
    - {{type: Dense, units: {classes}, activation: softmax}}   # one unit per class
compile:                        # keras.Model.compile's arguments
  optimizer: {{type: Adam, learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy   # class labels as integers
  metrics: [accuracy]
"""

_REGRESSOR = """\
model:
  layers:                       # a Keras Sequential stack; the input shape comes from the data
    - {{type: Dense, units: {units}, activation: relu}}
    - {{type: Dense, units: 1}}     # one linear output: the predicted value
compile:                        # keras.Model.compile's arguments
  optimizer: {{type: Adam, learning_rate: 0.01}}
  loss: mse                     # mean squared error
  metrics: [mae]                # mean absolute error, in the target's units
"""

_TAIL = """\
training:                       # keras.Model.fit's arguments
  epochs: {epochs}
  batch_size: {batch_size}
validation:
  scheme: holdout               # or kfold / repeated_kfold with n_splits (docs/validation.md)
  validation_split: 0.2         # of the rows left after the test split: what callbacks watch
  test_split: 0.2               # set aside first, scored once after training{stratify}
callbacks:                      # any keras.callbacks class, with its constructor arguments
  - {{type: EarlyStopping, monitor: val_loss, patience: 10, restore_best_weights: true}}
output:
  runs_dir: runs                # relative to this file's folder
"""


def choose(dataset: str | None, task: str | None) -> tuple[str, Task]:
    """The dataset and task of a starter: either may be left out; the task follows the
    dataset, and a task alone picks a dataset suited to it."""
    if task is not None and task not in DEFAULT_DATASET:
        raise InitError(f"--task {task!r}: use classification or regression."
                        f"{did_you_mean(task, DEFAULT_DATASET)}")
    if dataset is None:
        dataset = DEFAULT_DATASET[task or "classification"]
    if dataset not in DATASETS:
        raise InitError(f"--dataset {dataset!r} is not one of scikit-learn's bundled sets."
                        f"{did_you_mean(dataset, DATASETS)} Sets: {', '.join(DATASETS)}.")
    natural: Task = "classification" if DATASETS[dataset].classes else "regression"
    if task is not None and task != natural:
        other = DEFAULT_DATASET[task]
        target = "a class label" if natural == "classification" else "a continuous value"
        raise InitError(f"{dataset}'s target is {target}, so it is a {natural} set, not a "
                        f"{task} one. For {task}, try --dataset {other}.")
    return dataset, natural


def starter_config(dataset: str | None = None, task: str | None = None,
                   file_name: str = "config.yaml") -> str:
    """The commented YAML text of a starter config."""
    dataset, task = choose(dataset, task)
    info = DATASETS[dataset]
    if dataset == "digits":
        preprocessing = ("    numeric: none\n"
                         "    rescale: 0.0625             # pixel values 0..16 -> 0..1")
    else:
        preprocessing = ("    numeric: standardize        # mean and std from the training "
                         "rows only")
    kind = "classifier" if task == "classification" else "regression"
    name = f"{dataset.replace('_', '-')}-{kind}"
    text = _HEAD.format(about=info.about, rows=info.rows, dataset=dataset, file=file_name,
                        name_line=f"name: {name}".ljust(32), task=task,
                        preprocessing=preprocessing)
    units = 64 if info.features > 20 else 32
    body = _CLASSIFIER if task == "classification" else _REGRESSOR
    text += body.format(units=units, classes=info.classes)
    stratify = ("\n  stratify: true                # keep class proportions in every split"
                if task == "classification" else "")
    text += _TAIL.format(epochs=50 if info.rows < 1000 else 30,
                         batch_size=16 if info.rows < 300 else 32, stratify=stratify)
    return text


def _unwritable(output: Path, exc: OSError) -> str:
    blocked = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    why = f"{blocked} is a file, not a folder" if blocked else exc.strerror
    return f"cannot write {output}: {why}. Choose another --output."


def write_starter(output: str | Path, dataset: str | None = None,
                  task: str | None = None) -> Path:
    """Write a starter config to `output`, never over an existing file."""
    output = Path(output)
    text = starter_config(dataset, task, output.name)
    if output.exists():
        raise InitError(f"{output} already exists; kerastrain init never overwrites a file. "
                        "Choose another --output, or remove it first.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, or no permission
        raise InitError(_unwritable(output, exc)) from None
    try:
        with open(output, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise InitError(f"{output} already exists; kerastrain init never overwrites a "
                        "file.") from None
    except OSError as exc:
        raise InitError(_unwritable(output, exc)) from None
    return output

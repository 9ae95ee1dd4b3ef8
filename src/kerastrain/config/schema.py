"""The config schema: frozen pydantic models, one per top-level section.

Section and field names follow the Keras workflow (`compile`, `fit`'s arguments,
`validation_split`); Keras objects (layers, optimizers, losses, metrics, callbacks)
are written as a Keras name or `{type: ClassName, <constructor arguments>}` and are
checked against Keras itself in a later stage (`kerastrain.registry`), so this
module imports no TensorFlow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kerastrain.config.base import KerasObject, Name, Strict
from kerastrain.config.data_schema import (
    GENERATORS,
    SKLEARN_SETS,
    SOURCE_FIELDS,
    SOURCE_REQUIRED,
    ColumnSpec,
    DataSpec,
    PreprocessingSpec,
    SourceSpec,
    TargetSpec,
)

__all__ = ["GENERATORS", "SKLEARN_SETS", "SOURCE_FIELDS", "SOURCE_REQUIRED", "ColumnSpec",
           "CompileSpec", "Config", "DataSpec", "KerasObject", "ModelSpec", "Name", "OutputSpec",
           "PreprocessingSpec", "RuntimeSpec", "SourceSpec", "Strict", "TargetSpec",
           "TrainingSpec", "ValidationSpec"]


NodeName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]



DEFAULT_SPLITS = 5  # validation.n_splits when not given
DEFAULT_REPEATS = 3  # validation.n_repeats when not given

class GraphInput(Strict):
    """A named `keras.Input`, fed by feature columns (or a named array of an NPZ file).

    Without `columns`, the column of the input's own name feeds it; with one input only,
    `data.features` (or every column that is no target)."""

    name: NodeName = Field(description="The input's name, used by nodes' inputs.")
    columns: list[Name] | None = Field(default=None, min_length=1,
                                       description="The feature columns that feed it.")
    shape: list[int] | None = Field(default=None, description="Expected shape without the "
                                    "batch axis; checked against the data.")


class GraphNode(KerasObject):
    """A named layer called on earlier names: `{name, type, inputs: [...], <arguments>}`."""

    name: NodeName = Field(description="The node's name, used by later nodes and outputs.")
    inputs: list[NodeName] = Field(min_length=1, description="Names of the inputs or earlier "
                                   "nodes this layer is called on.")


class ModelSpec(Strict):
    """A layer stack (Keras `Sequential`, `layers`) or a graph (the functional API:
    `inputs`, `nodes`, `outputs`). Input shapes come from the data."""

    name: str | None = Field(default=None, description="The Keras model's name.")
    layers: list[KerasObject] | None = Field(
        default=None, min_length=1, description="A Sequential stack: {type: Dense, units: "
                                                "32, ...} per layer.")
    inputs: list[GraphInput] | None = Field(default=None, min_length=1,
                                            description="Graph models: the named inputs.")
    nodes: list[GraphNode] | None = Field(default=None, min_length=1,
                                          description="Graph models: the named layers.")
    outputs: list[NodeName] | None = Field(default=None, min_length=1,
                                           description="Graph models: the output node names.")

    @model_validator(mode="after")
    def _one_form(self) -> ModelSpec:
        graph = [k for k in ("inputs", "nodes", "outputs") if getattr(self, k) is not None]
        if self.layers is not None and graph:
            raise ValueError(f"give either layers (a layer stack) or inputs, nodes and outputs "
                             f"(a graph), not both; remove {', '.join(graph)} or layers.")
        if self.layers is None and len(graph) < 3:
            missing = [k for k in ("inputs", "nodes", "outputs") if k not in graph]
            if not graph:
                raise ValueError("give layers (a layer stack) or inputs, nodes and outputs "
                                 "(a graph).")
            raise ValueError(f"a graph model needs inputs, nodes and outputs; "
                             f"{', '.join(missing)} missing.")
        return self

    @property
    def is_graph(self) -> bool:
        return self.layers is None


class CompileSpec(Strict):
    """The arguments of `keras.Model.compile`."""

    optimizer: str | KerasObject = Field(default="rmsprop", description="A Keras optimizer: "
                                         "a name (adam) or {type: Adam, learning_rate: ...}.")
    loss: Annotated[str | KerasObject | dict[str, str | KerasObject],
                    Field(union_mode="left_to_right")] = Field(
        description="A Keras loss, or output name -> loss for graph models.")
    metrics: Annotated[list[str | KerasObject] | dict[str, list[str | KerasObject]],
                       Field(union_mode="left_to_right")] = Field(
        default_factory=list, description="Keras metrics, or output name -> metrics.")
    weighted_metrics: Annotated[list[str | KerasObject] | dict[str, list[str | KerasObject]],
                                Field(union_mode="left_to_right")] = Field(
        default_factory=list, description="Metrics weighted by class or sample weights.")
    loss_weights: dict[str, float] | None = Field(
        default=None, description="Graph models: output name -> weight of its loss.")

    @field_validator("loss", "loss_weights", mode="before")
    @classmethod
    def _per_output_as_mapping(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise ValueError("give one value per output as a mapping of output name to value "
                             "(Keras's dict form), e.g. {main_output: mse, aux_output: mse}.")
        return value

    @field_validator("metrics", "weighted_metrics", mode="before")
    @classmethod
    def _one_metric_per_output(cls, value: Any) -> Any:
        """`{output: mae}` as Keras takes it: one metric of an output, as a list."""
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value
    steps_per_execution: int = Field(default=32, ge=1, description="Batches per compiled "
                                     "call (faster on CPU; Keras's default is 1).")
    jit_compile: bool | Literal["auto"] = Field(default=False, description="Compile with XLA.")
    run_eagerly: bool = Field(default=False, description="Run without tf.function (debugging).")


class TrainingSpec(Strict):
    """The arguments of `keras.Model.fit` that are not data or validation."""

    epochs: int = Field(default=10, ge=1, description="Passes over the training rows.")
    batch_size: int = Field(default=32, ge=1, description="Rows per gradient step.")
    shuffle: bool = Field(default=True, description="Shuffle the training rows every epoch.")
    class_weight: Literal["balanced"] | dict[Name, float] | None = Field(
        default=None, description="balanced, or class label -> weight.")
    validation_freq: int = Field(default=1, ge=1, description="Validate every this many "
                                                              "epochs.")
    validation_batch_size: int | None = Field(default=None, ge=1,
                                              description="Default: batch_size.")


class ValidationSpec(Strict):
    """How rows are split: a test split set aside first, then hold-out or K-fold folds.

    Combinations that need the data (or that cannot work) are checked against the rows in
    `kerastrain.data.splits.check_scheme`, so their errors name the exact key. See
    docs/validation.md.
    """

    scheme: Literal["holdout", "kfold", "repeated_kfold"] = Field(
        default="holdout", description="holdout: one split; kfold: n_splits folds; "
                                       "repeated_kfold: n_splits folds, n_repeats times.")
    # holdout: the share of non-test rows Keras validates on (and callbacks steer on).
    # kfold/repeated_kfold: the share of each fold's training rows set apart as an inner
    # validation split that Keras validates on, so that what steers training (early
    # stopping, best checkpoints) is never the fold's scored rows; 0 validates on them.
    validation_split: float = Field(
        default=0.2, ge=0, lt=1, description="holdout: share of non-test rows to validate "
        "on. Cross-validation: share of each fold's training rows that steers callbacks.")
    test_split: float = Field(default=0.0, ge=0, lt=1, description="Share of all rows set "
                              "aside first and scored once after training.")
    n_splits: int | None = Field(default=None, ge=2,
                                 description="Folds per repeat (kfold schemes); default 5.")
    n_repeats: int | None = Field(default=None, ge=2,
                                  description="Repeats (repeated_kfold); default 3.")
    shuffle: bool | None = Field(default=None, description="Shuffle before splitting; "
                                 "default true, false under time_order.")
    seed: int | None = Field(default=None, ge=0, lt=2**32, description="random_state of "
                             "every splitter; default: the config's seed.")
    stratify: bool | Literal["auto"] = Field(default="auto", description="Keep class "
                                             "proportions in every split (classification).")
    groups: Name | None = Field(default=None, description="A column: rows of one group "
                                "stay on one side of every split.")
    time_order: Name | bool = Field(default=False, description="A column to sort rows by, "
                                    "or true for the row order: never train on the future.")
    steer_on_scored_rows: bool = Field(default=False, description="Allow validation_split "
                                       "0 with callbacks acting on val_* (optimistic scores).")
    refit: bool = Field(default=True, description="Cross-validation: train the run's model "
                        "on every non-test row after the folds.")
    leakage: Literal["warn", "error", "ignore"] = Field(
        default="warn", description="What to do about rows duplicated across splits.")

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> ValidationSpec:
        if self.scheme == "holdout" and self.validation_split + self.test_split >= 1:
            raise ValueError(
                f"validation_split + test_split is {self.validation_split + self.test_split:g}: "
                "no rows would be left to train on. Keep their sum below 1.")
        return self

    @property
    def cross_validated(self) -> bool:
        return self.scheme != "holdout"

    @property
    def n_folds(self) -> int:
        """How many folds the scheme trains (0 for the hold-out)."""
        if not self.cross_validated:
            return 0
        repeats = (self.n_repeats or DEFAULT_REPEATS) if self.scheme == "repeated_kfold" else 1
        return (self.n_splits or DEFAULT_SPLITS) * repeats


class RuntimeSpec(Strict):
    """Where and how TensorFlow runs."""

    strategy: Literal["auto", "default", "one_device", "mirrored",
                      "multi_worker_mirrored", "tpu"] = Field(
        default="auto", description="The tf.distribute strategy; auto: mirrored on several "
                                    "GPUs, else the default.")
    devices: list[str] | None = Field(default=None, description="Devices to use, e.g. "
                                      "[/gpu:0, /gpu:1]; default: all.")
    dtype_policy: str | None = Field(default=None, description="A Keras dtype policy, e.g. "
                                     "mixed_float16.")
    deterministic: bool = Field(default=False, description="Enable TensorFlow's op "
                                "determinism (slower).")
    workers: int | Literal["auto"] = Field(
        default="auto", description="Cross-validation folds trained side by side (this "
        "process and workers of its own, sharing the cores); auto: as many as the cores "
        "allow for a model of up to a million parameters on the CPU, else 1.")

    @field_validator("workers")
    @classmethod
    def _at_least_one(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"workers is {value}: give 1 or more, or auto.")
        return value


class OutputSpec(Strict):
    """What a run writes besides its model and metrics."""

    runs_dir: str = Field(default="runs", description="Where run directories are created: "
                          "relative to the config file's folder (with --set, to the working "
                          "directory); default: runs in the working directory.")
    checkpoints: bool = Field(default=True, description="Keep checkpoints/best.keras by "
                              "val_loss.")
    tensorboard: bool | Literal["auto"] = Field(
        default="auto", description="TensorBoard logs in logs/; auto: when the tensorboard "
                                    "package is installed.")
    plots: bool = Field(default=True, description="Learning curves in plots/ (needs "
                        "matplotlib).")
    backup_interval_s: float = Field(
        default=5.0, ge=0, description="Seconds between backups of the training state "
        "(checkpoints/backup): after kill -9 at most this much training is redone; Ctrl-C, "
        "SIGTERM and failures keep every finished epoch. 0: after every epoch.")


ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]


class Config(Strict):
    """A whole experiment, as written in YAML and resolved (defaults, overrides)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80,
                      description="The experiment's name; runs go to "
                                  "<runs_dir>/<name>-<time>-<id>.")
    seed: int | None = Field(default=None, ge=0, lt=2**32, description="Seeds Python, NumPy "
                             "and TensorFlow; drawn and recorded if absent.")
    plugins: list[ModuleName] = Field(default_factory=list, description="Python modules "
                                      "imported first; they register custom Keras objects.")
    plugin_path: list[str] | None = Field(
        default=None, description="Folders searched first for the plugins, relative to the "
        "config file's folder; default: that folder. A run's config.yaml holds them "
        "absolute, so fitting it again finds the plugins.")
    data: DataSpec = Field(description="The rows and their preprocessing.")
    model: ModelSpec = Field(description="A layer stack or a graph of layers.")
    compile: CompileSpec = Field(description="The arguments of keras.Model.compile.")
    training: TrainingSpec = Field(default_factory=TrainingSpec,
                                   description="The arguments of keras.Model.fit.")
    validation: ValidationSpec = Field(default_factory=ValidationSpec,
                                       description="How rows are split and scored.")
    callbacks: list[KerasObject] = Field(default_factory=list, description="Keras "
                                         "callbacks, e.g. {type: EarlyStopping, patience: 5}.")
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec,
                                 description="Distribution strategy, devices, precision.")
    output: OutputSpec = Field(default_factory=OutputSpec,
                               description="Where runs go and what they keep.")

    def resolved(self) -> dict[str, Any]:
        """Plain data that, written as YAML and loaded again, gives this same config."""
        return self.model_dump(mode="json", exclude_none=True)

"""The config schema: frozen pydantic models, one per top-level section.

Section and field names follow the Keras workflow (`compile`, `fit`'s arguments,
`validation_split`); Keras objects (layers, optimizers, losses, metrics, callbacks)
are written as a Keras name or `{type: ClassName, <constructor arguments>}` and are
checked against Keras itself in a later stage (`kerastrain.registry`), so this
module imports no TensorFlow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kerastrain.errors import did_you_mean

Name = str | int  # a column, by name or by index


class Strict(BaseModel):
    """Unknown keys are errors; parsed configs never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KerasObject(BaseModel):
    """`{type: ClassName, <constructor arguments>}`; the arguments are checked by the registry."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str

    @model_validator(mode="before")
    @classmethod
    def _class_name_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "class_name" in data and "type" not in data:
            data = dict(data)
            data["type"] = data.pop("class_name")
            if isinstance(data.get("config"), dict):
                data.update(data.pop("config"))
        return data

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


SKLEARN_SETS = ("iris", "digits", "wine", "breast_cancer", "diabetes")
GENERATORS = ("gaussian_clouds", "classification", "regression", "tickets")
SOURCE_FIELDS: dict[str, set[str]] = {
    "sklearn": {"name"},
    "csv": {"path", "delimiter"},
    "parquet": {"path"},
    "npz": {"path"},
    "npy": {"path", "target_path"},
    "synthetic": {"name", "n_samples", "n_features", "n_classes", "noise"},
    "fashion_mnist": set(),
}
SOURCE_REQUIRED: dict[str, set[str]] = {
    "sklearn": {"name"},
    "csv": {"path"},
    "parquet": {"path"},
    "npz": {"path"},
    "npy": {"path", "target_path"},
    "synthetic": {"name"},
    "fashion_mnist": set(),
}


class SourceSpec(Strict):
    """Where the rows come from. Which fields apply depends on `type`."""

    type: Literal["sklearn", "csv", "parquet", "npz", "npy", "synthetic", "fashion_mnist"]
    name: str | None = None
    path: str | None = None
    target_path: str | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    n_samples: int | None = Field(default=None, gt=0)
    n_features: int | None = Field(default=None, gt=0)
    n_classes: int | None = Field(default=None, ge=2)
    noise: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _fields_fit_type(self) -> SourceSpec:
        given = {k for k in type(self).model_fields if k != "type" and getattr(self, k) is not None}
        extra = given - SOURCE_FIELDS[self.type]
        if extra:
            allowed = ", ".join(sorted(SOURCE_FIELDS[self.type])) or "no other keys"
            raise ValueError(f"a '{self.type}' source takes no {', '.join(sorted(extra))} "
                             f"(it takes {allowed}).")
        missing = SOURCE_REQUIRED[self.type] - given
        if missing:
            raise ValueError(f"a '{self.type}' source needs {', '.join(sorted(missing))}.")
        known = {"sklearn": SKLEARN_SETS, "synthetic": GENERATORS}.get(self.type)
        if known and self.name not in known:
            raise ValueError(f"unknown {self.type} set {self.name!r}."
                             f"{did_you_mean(self.name, known)}  Known: {', '.join(known)}.")
        return self


class PreprocessingSpec(Strict):
    """Feature preprocessing, fitted on training rows only."""

    numeric: Literal["standardize", "minmax", "none"] = "standardize"
    categorical: Literal["one_hot", "integer"] = "one_hot"
    categorical_columns: list[Name] = Field(default_factory=list)
    rescale: float | None = None


class TargetSpec(Strict):
    """One output's target: its column and, where it differs from `data`'s, its task."""

    column: Name
    task: Literal["auto", "classification", "regression"] = "auto"
    target_encoding: Literal["auto", "integer", "one_hot"] = "auto"


class DataSpec(Strict):
    source: SourceSpec
    features: list[Name] | None = None
    target: Name | None = None
    targets: dict[str, Name | TargetSpec] | None = None  # graph models: output name -> target
    task: Literal["auto", "classification", "regression"] = "auto"
    target_encoding: Literal["auto", "integer", "one_hot"] = "auto"
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec)


NodeName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class GraphInput(Strict):
    """A named `keras.Input`, fed by feature columns (or a named array of an NPZ file).

    Without `columns`, the column of the input's own name feeds it; with one input only,
    `data.features` (or every column that is no target)."""

    name: NodeName
    columns: list[Name] | None = Field(default=None, min_length=1)
    shape: list[int] | None = None  # checked against the data when given


class GraphNode(KerasObject):
    """A named layer called on earlier names: `{name, type, inputs: [...], <arguments>}`."""

    name: NodeName
    inputs: list[NodeName] = Field(min_length=1)


class ModelSpec(Strict):
    """A layer stack (Keras `Sequential`, `layers`) or a graph (the functional API:
    `inputs`, `nodes`, `outputs`). Input shapes come from the data."""

    name: str | None = None
    layers: list[KerasObject] | None = Field(default=None, min_length=1)
    inputs: list[GraphInput] | None = Field(default=None, min_length=1)
    nodes: list[GraphNode] | None = Field(default=None, min_length=1)
    outputs: list[NodeName] | None = Field(default=None, min_length=1)

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

    optimizer: str | KerasObject = "rmsprop"
    loss: Annotated[str | KerasObject | dict[str, str | KerasObject],
                    Field(union_mode="left_to_right")]
    metrics: Annotated[list[str | KerasObject] | dict[str, list[str | KerasObject]],
                       Field(union_mode="left_to_right")] = Field(default_factory=list)
    weighted_metrics: Annotated[list[str | KerasObject] | dict[str, list[str | KerasObject]],
                                Field(union_mode="left_to_right")] = Field(default_factory=list)
    loss_weights: dict[str, float] | None = None  # graph models: output name -> weight

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
    steps_per_execution: int = Field(default=32, ge=1)
    jit_compile: bool | Literal["auto"] = False
    run_eagerly: bool = False


class TrainingSpec(Strict):
    """The arguments of `keras.Model.fit` that are not data or validation."""

    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    shuffle: bool = True
    class_weight: Literal["balanced"] | dict[Name, float] | None = None
    validation_freq: int = Field(default=1, ge=1)
    validation_batch_size: int | None = Field(default=None, ge=1)


class ValidationSpec(Strict):
    """How rows are split: a test split set aside first, then hold-out or K-fold folds.

    Combinations that need the data (or that cannot work) are checked against the rows in
    `kerastrain.data.splits.check_scheme`, so their errors name the exact key. See
    docs/validation.md.
    """

    scheme: Literal["holdout", "kfold", "repeated_kfold"] = "holdout"
    # holdout: the share of non-test rows Keras validates on (and callbacks steer on).
    # kfold/repeated_kfold: the share of each fold's training rows set apart as an inner
    # validation split that Keras validates on, so that what steers training (early
    # stopping, best checkpoints) is never the fold's scored rows; 0 validates on them.
    validation_split: float = Field(default=0.2, ge=0, lt=1)
    test_split: float = Field(default=0.0, ge=0, lt=1)
    n_splits: int | None = Field(default=None, ge=2)      # kfold schemes; default 5
    n_repeats: int | None = Field(default=None, ge=2)     # repeated_kfold; default 3
    shuffle: bool | None = None          # default: true, false under time_order
    seed: int | None = Field(default=None, ge=0, lt=2**32)  # default: the config's seed
    stratify: bool | Literal["auto"] = "auto"
    groups: Name | None = None           # a column: rows of one group stay in one split
    time_order: Name | bool = False      # a column to sort by, or true for the row order
    steer_on_scored_rows: bool = False   # allow validation_split 0 with val_* callbacks
    refit: bool = True                   # CV: train the run's model on all non-test rows
    leakage: Literal["warn", "error", "ignore"] = "warn"

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


class RuntimeSpec(Strict):
    strategy: Literal["auto", "default", "one_device", "mirrored",
                      "multi_worker_mirrored", "tpu"] = "auto"
    devices: list[str] | None = None
    dtype_policy: str | None = None
    deterministic: bool = False


class OutputSpec(Strict):
    runs_dir: str = "runs"
    checkpoints: bool = True
    tensorboard: bool | Literal["auto"] = "auto"  # auto: when the tensorboard package is there
    plots: bool = True


ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]


class Config(Strict):
    """A whole experiment, as written in YAML and resolved (defaults, overrides)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    seed: int | None = Field(default=None, ge=0, lt=2**32)
    plugins: list[ModuleName] = Field(default_factory=list)  # imported before names are checked
    data: DataSpec
    model: ModelSpec
    compile: CompileSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    callbacks: list[KerasObject] = Field(default_factory=list)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)

    def resolved(self) -> dict[str, Any]:
        """Plain data that, written as YAML and loaded again, gives this same config."""
        return self.model_dump(mode="json", exclude_none=True)

"""The `data` section of the config: the source of the rows, the feature and target
columns, and their preprocessing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kerastrain.config.base import Name, Strict
from kerastrain.errors import did_you_mean

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

    type: Literal["sklearn", "csv", "parquet", "npz", "npy", "synthetic",
                  "fashion_mnist"] = Field(description="The kind of source.")
    name: str | None = Field(default=None, description="sklearn: the bundled set (iris, digits, "
                             "wine, breast_cancer, diabetes); synthetic: the generator.")
    path: str | None = Field(default=None, description="csv, parquet, npz, npy: the file, "
                             "relative to the config file.")
    target_path: str | None = Field(default=None, description="npy: the file of targets.")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1,
                                  description="csv: the field separator, one character.")
    n_samples: int | None = Field(default=None, gt=0, description="synthetic: rows to draw.")
    n_features: int | None = Field(default=None, gt=0,
                                   description="synthetic: feature columns.")
    n_classes: int | None = Field(default=None, ge=2, description="synthetic: classes.")
    noise: float | None = Field(default=None, ge=0, description="synthetic: noise level.")

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
                             f"{did_you_mean(self.name, known)} Known: {', '.join(known)}.")
        return self


class PreprocessingSpec(Strict):
    """Feature preprocessing, fitted on training rows only."""

    numeric: Literal["standardize", "minmax", "none"] = Field(
        default="standardize", description="Scaling of numeric features, fitted on the "
                                           "training rows.")
    categorical: Literal["one_hot", "integer"] = Field(
        default="one_hot", description="Encoding of string columns and categorical_columns.")
    categorical_columns: list[Name] = Field(
        default_factory=list, description="Numeric columns to treat as categories.")
    rescale: float | None = Field(default=None, description="Multiply numeric features by "
                                  "this first, e.g. 0.00392 for pixels.")


class TargetSpec(Strict):
    """One output's target: its column and, where it differs from `data`'s, its task."""

    column: Name = Field(description="The target column (name or index).")
    task: Literal["auto", "classification", "regression"] = Field(
        default="auto", description="auto: inferred from the column.")
    target_encoding: Literal["auto", "integer", "one_hot"] = Field(
        default="auto", description="How class labels are fed to the loss.")


class DataSpec(Strict):
    """The rows, the feature and target columns, and their preprocessing."""

    source: SourceSpec = Field(description="Where the rows come from.")
    features: list[Name] | None = Field(
        default=None, description="Feature columns (names or indices); default: every "
                                  "column that is no target, group or time column.")
    target: Name | None = Field(default=None, description="The target column (name or index).")
    targets: dict[str, Name | TargetSpec] | None = Field(
        default=None, description="Graph models: output name -> its target column.")
    task: Literal["auto", "classification", "regression"] = Field(
        default="auto", description="auto: classification for string or boolean targets "
                                    "or a classification loss or metric, else regression.")
    target_encoding: Literal["auto", "integer", "one_hot"] = Field(
        default="auto", description="auto: one_hot for categorical_crossentropy, else "
                                    "integer.")
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec,
                                             description="Feature preprocessing.")

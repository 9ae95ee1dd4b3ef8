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
    "csv": {"path", "delimiter", "package", "stream"},
    "parquet": {"path", "stream"},
    "npz": {"path", "stream"},
    "npy": {"path", "target_path", "stream"},
    "synthetic": {"name", "n_samples", "n_features", "n_classes", "noise"},
    "fashion_mnist": set(),
    "image_folder": {"path", "image_size", "color_mode", "interpolation", "crop_to_aspect_ratio",
                     "pad_to_aspect_ratio", "class_names"},
    "text_folder": {"path", "class_names"},
}
SOURCE_REQUIRED: dict[str, set[str]] = {
    "sklearn": {"name"},
    "csv": {"path"},
    "parquet": {"path"},
    "npz": {"path"},
    "npy": {"path", "target_path"},
    "synthetic": {"name"},
    "fashion_mnist": set(),
    "image_folder": {"path"},
    "text_folder": {"path"},
}
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                  "gaussian", "mitchellcubic")


class SourceSpec(Strict):
    """Where the rows come from. Which fields apply depends on `type`."""

    type: Literal["sklearn", "csv", "parquet", "npz", "npy", "synthetic", "fashion_mnist",
                  "image_folder", "text_folder"] = Field(description="The kind of source.")
    name: str | None = Field(default=None, description="sklearn: the bundled set (iris, digits, "
                             "wine, breast_cancer, diabetes); synthetic: the generator.")
    path: str | None = Field(default=None, description="csv, parquet, npz, npy: the file, "
                             "relative to the config file; or a folder or glob pattern of "
                             "such files (shards, read one after another in name order).")
    target_path: str | None = Field(default=None, description="npy: the file of targets (a "
                                    "folder or glob of them for shards, paired in name order).")
    stream: bool | None = Field(default=None, description="npy, npz, csv, parquet: leave the "
                                "rows in the file and read them a batch at a time as training "
                                "goes, not into memory (docs/data.md).")
    package: str | None = Field(default=None, description="csv: an installed Python package "
                                "that ships the file; path is then inside it.")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1,
                                  description="csv: the field separator, one character.")
    n_samples: int | None = Field(default=None, gt=0, description="synthetic: rows to draw.")
    n_features: int | None = Field(default=None, gt=0,
                                   description="synthetic: feature columns.")
    n_classes: int | None = Field(default=None, ge=2, description="synthetic: classes.")
    noise: float | None = Field(default=None, ge=0, description="synthetic: noise level.")
    image_size: tuple[int, int] | None = Field(default=None, description="image_folder: "
                                               "[height, width] every image is resized to "
                                               "(default [256, 256]).")
    color_mode: Literal["grayscale", "rgb", "rgba"] | None = Field(
        default=None, description="image_folder: channels 1, 3 or 4 (default rgb).")
    interpolation: Literal[INTERPOLATIONS] | None = Field(  # type: ignore[valid-type]
        default=None, description="image_folder: the resizing method (default bilinear).")
    crop_to_aspect_ratio: bool | None = Field(default=None, description="image_folder: crop "
                                              "the centre to image_size's aspect ratio first.")
    pad_to_aspect_ratio: bool | None = Field(default=None, description="image_folder: pad "
                                             "to image_size's aspect ratio first.")
    class_names: list[str] | None = Field(default=None, min_length=2, description="image_"
                                          "folder, text_folder: the class subfolders to read "
                                          "(default: every subfolder).")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict) and "mmap" in data:   # the first name of stream (npy)
            if "stream" in data:
                raise ValueError("mmap is the older name of stream: give one of them.")
            data = {("stream" if k == "mmap" else k): v for k, v in data.items()}
        return data

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
        if self.stream and self.package:
            raise ValueError("stream reads a file by its path; a file a package ships is read "
                             "into memory (remove stream or package).")
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be true.")
        if self.image_size is not None and min(self.image_size) < 1:
            raise ValueError("image_size is [height, width], both at least 1.")
        known = {"sklearn": SKLEARN_SETS, "synthetic": GENERATORS}.get(self.type)
        if known and self.name not in known:
            raise ValueError(f"unknown {self.type} set {self.name!r}."
                             f"{did_you_mean(self.name, known)} Known: {', '.join(known)}.")
        return self


MISSING_MARKERS = ("", "NA", "N/A", "NaN", "nan", "null", "None", "?")


class ColumnSpec(Strict):
    """One column's kind and treatment, where the inferred ones do not fit
    (docs/columns.md)."""

    kind: Literal["auto", "numeric", "categorical", "binary", "date", "datetime", "text",
                  "identifier"] = Field(default="auto", description="auto: inferred from the "
                                        "training rows; identifier: dropped.")
    missing: Literal["auto", "mean", "median", "constant", "drop", "category"] = Field(
        default="auto", description="Missing values: numeric and dates mean, median "
        "(auto) or constant (fill_value), with a missing-indicator column; drop (the "
        "training rows); categorical: category (auto, a 'missing' category).")
    fill_value: float | None = Field(default=None, description="missing: constant: the value.")
    indicator: bool = Field(default=True, description="Add a 0/1 column saying a numeric or "
                            "date value was missing (when the training rows miss any).")
    encoding: Literal["auto", "one_hot", "integer", "hash", "multi_hot", "count", "tf_idf",
                      "sequence"] = Field(default="auto", description="categorical: one_hot, "
                                          "integer or hash; text: multi_hot, count, tf_idf or "
                                          "sequence (token ids for an Embedding).")
    min_frequency: int | None = Field(default=None, ge=1, description="categorical: rarer "
                                      "categories join the 'other' bucket; text: tokens "
                                      "of fewer training rows are left out (default 2).")
    max_categories: int | None = Field(default=None, ge=1, description="categorical: keep "
                                       "the most frequent ones; the rest join 'other'.")
    hash_bins: int = Field(default=64, ge=2, description="encoding: hash: the number of bins.")
    max_tokens: int = Field(default=2000, ge=2, description="text: the vocabulary's size.")
    ngrams: int = Field(default=1, ge=1, le=5, description="text: word n-grams up to this.")
    sequence_length: int = Field(default=32, ge=1, description="text, encoding: sequence: "
                                 "token ids per row (padded with 0, cut after).")
    cyclic: bool = Field(default=False, description="dates: month, weekday and day of year "
                         "as sine and cosine.")


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
    missing_values: list[str] = Field(
        default_factory=lambda: list(MISSING_MARKERS), description="Cells that mean 'missing' "
        "(compared after stripping spaces).")
    numeric_missing: Literal["mean", "median", "constant", "drop"] = Field(
        default="median", description="Missing numeric values, unless a column says otherwise.")
    min_frequency: int = Field(default=1, ge=1, description="Categories seen fewer times in "
                               "the training rows join the 'other' bucket.")
    max_categories: int | None = Field(default=None, ge=1, description="At most this many "
                                       "categories per column; the rarer join 'other'.")
    scale_target: Literal["auto", "none"] = Field(
        default="auto", description="auto: a regression target is standardized for the "
        "network (fitted on the training rows), every score and prediction in its own units.")


class TargetSpec(Strict):
    """One output's target: its column and, where it differs from `data`'s, its task."""

    column: Name = Field(description="The target column (name or index).")
    task: Literal["auto", "classification", "regression"] = Field(
        default="auto", description="auto: inferred from the column.")
    target_encoding: Literal["auto", "integer", "one_hot"] = Field(
        default="auto", description="How class labels are fed to the loss.")


class DataSpec(Strict):
    """The rows, the feature and target columns, and their preprocessing."""

    source: SourceSpec = Field(description="Where the rows come from (the training rows, "
                               "when data.validation or data.test is given).")
    validation: SourceSpec | None = Field(
        default=None, description="Rows already set aside to validate on: the hold-out "
        "validation rows (validation.scheme holdout, no validation_split).")
    test: SourceSpec | None = Field(default=None, description="Rows already set aside to "
                                    "test on, scored once after training (no "
                                    "validation.test_split).")
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
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, description="Per column (by name): its kind, missing values, "
                                          "encoding; see docs/columns.md.")
    exclude: list[Name] = Field(default_factory=list, description="Columns never used as "
                                "features (the others all are, unless data.features lists "
                                "them).")

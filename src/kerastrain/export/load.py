"""A run (or one of its cross-validation folds) read back as the raw-input model that
`export` writes and `serve` runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerastrain import _keras
from kerastrain.data import layers
from kerastrain.data.graphdata import GraphPreprocessor, load_preprocessor
from kerastrain.data.preprocess import Preprocessor
from kerastrain.errors import UserError
from kerastrain.export.graph import RawInput, classes, label_values, raw_model
from kerastrain.inference import UNSAFE_REASON, load_run
from kerastrain.rundir import read_json


@dataclass
class RawModel:
    """A run's model with its preprocessing inside, and what it takes and gives."""

    run_dir: Path
    fold: str | None
    pre: Preprocessor | GraphPreprocessor
    model: Any           # keras.Model: {RawInput.key: tensor} -> {output name: tensor}
    inputs: list[RawInput]

    def describe(self) -> dict[str, Any]:
        """What the model takes and gives, and where it came from (export.json, /schema)."""
        outputs: dict[str, Any] = {}
        pres = self.pre.outputs if isinstance(self.pre, GraphPreprocessor) else {"": self.pre}
        for name, pre in pres.items():
            prefix = f"{name}_" if name else ""
            if pre.task == "classification":
                labels = label_values(pre.classes)
                outputs[prefix + "probabilities"] = {
                    "dtype": "float32", "shape": [None, len(labels)],
                    "meaning": "one probability per class, in the order of `classes`",
                    "classes": labels}
                outputs[prefix + "label"] = {
                    "dtype": "int64" if isinstance(labels[0], int) else "string",
                    "shape": [None], "meaning": "the class of the highest probability"}
            else:
                outputs[name or "value"] = {"dtype": "float32", "shape": [None, None],
                                            "meaning": f"the predicted {pre.target['name']}"}
        return {"run_dir": str(self.run_dir), "fold": self.fold,
                "inputs": [spec.to_json() for spec in self.inputs],
                "missing_values": "NaN for numbers; an empty string (or one of "
                                  f"{self.missing_markers}) for strings and dates",
                "outputs": outputs}

    @property
    def missing_markers(self) -> list[str]:
        pres = self.pre.inputs.values() if isinstance(self.pre, GraphPreprocessor) \
            else [self.pre]
        return sorted({m for pre in pres for m in pre.missing_values})


def load_raw_model(path: str | Path, fold: str | None = None, unsafe: bool = False,
                   exact: bool = True) -> RawModel:
    """The run at `path` (its model: for a cross-validation run the refit one, or the fold
    named `fold`) behind its fitted preprocessing, raw columns in. The saved model is
    loaded in Keras's safe mode unless `unsafe`; numbers are scaled in float32 unless
    `exact` (TFLite's built-in ops have no float64)."""
    loaded = load_run(path, unsafe=unsafe)
    pre, model = loaded.pre, loaded.model
    if fold is not None:
        place = loaded.run.fold(fold)
        if not place.model.is_file():
            found = sorted(p.name for p in (loaded.run.path / "folds").glob("*")
                           if (p / "model.keras").is_file())
            raise UserError(f"{loaded.run.path}: no fold {fold!r} with a model; folds: "
                            f"{', '.join(found) or 'none (not a cross-validation run)'}.",
                            option="fold")
        pre = load_preprocessor(read_json(place.preprocessing))
        layers.classes()
        try:
            model = _keras.keras().saving.load_model(place.model, safe_mode=not unsafe)
        except ValueError as exc:
            if "safe_mode" not in str(exc):
                raise
            raise UserError(f"{place.model}: refused to load the model: {UNSAFE_REASON}",
                            option="unsafe") from None
    classes()
    wrapped, inputs = raw_model(pre, model, exact)
    return RawModel(loaded.run.path.resolve(), fold, pre, wrapped, inputs)

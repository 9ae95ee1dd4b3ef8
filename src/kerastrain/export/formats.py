"""`export`: a run's raw-input model written as a SavedModel, a .keras file, a TFLite
flatbuffer or an ONNX graph, in a folder with export.json and README.md that say what it
takes and gives (docs/export.md)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kerastrain import _keras
from kerastrain.errors import UserError
from kerastrain.export import convert
from kerastrain.export.load import RawModel, load_raw_model

FORMATS = ("saved_model", "keras", "tflite", "onnx")
LOADING = {
    "saved_model": "m = tf.saved_model.load(PATH); f = m.signatures['serving_default']; "
                   "f(**{name: tf.constant([...]) for each input})",
    "keras": "import kerastrain.export; kerastrain.export.register(); "
             "m = keras.saving.load_model(PATH + '/model.keras'); m({name: array, ...})",
    "tflite": "tf.lite.Interpreter(PATH + '/model.tflite').get_signature_runner()(**inputs)",
    "onnx": "onnxruntime.InferenceSession(PATH + '/model.onnx').run(None, inputs)",
}


def check_target(output: Path, fmt: str, overwrite: bool) -> None:
    """Refuse a format we do not write or an existing output folder, before any work."""
    if fmt not in FORMATS:
        raise UserError(f"no export format {fmt!r}; one of: {', '.join(FORMATS)}.",
                        option="format")
    if output.exists() and not overwrite:
        raise UserError(f"{output} exists; choose another folder, or replace it knowingly.",
                        option="overwrite")
    if output.exists() and not output.is_dir():
        raise UserError(f"{output} is a file; the export is a folder: name a new one.")


def signature_fn(raw: RawModel) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The serving function (a dict of raw columns -> named outputs) and its input specs."""
    tf = _keras.tf()
    specs = {spec.key: tf.TensorSpec((None, *spec.shape), getattr(tf, spec.dtype),
                                     name=spec.key) for spec in raw.inputs}
    model = raw.model

    def serve(inputs: dict[str, Any]) -> dict[str, Any]:
        return model(inputs, training=False)

    return serve, specs


def write_saved_model(raw: RawModel, folder: Path) -> None:
    keras = _keras.keras()
    serve, specs = signature_fn(raw)
    archive = keras.export.ExportArchive()
    archive.track(raw.model)
    archive.add_endpoint("serving_default", serve, input_signature=[specs])
    archive.write_out(str(folder), verbose=False)


def export(path: str | Path, fmt: str, output: str | Path, fold: str | None = None,
           overwrite: bool = False, unsafe: bool = False) -> dict[str, Any]:
    """Write the run's raw-input model to the folder `output` in format `fmt`; a failure
    leaves no folder (and an existing one, replaced with `overwrite`, as it was)."""
    output = Path(output)
    check_target(output, fmt, overwrite)
    if fmt == "onnx":
        convert.check_onnx()
    raw = load_raw_model(path, fold, unsafe, exact=fmt != "tflite")
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        files = _write(raw, fmt, work)
        info = {**raw.describe(), "format": fmt, "files": files,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "load": LOADING[fmt]}
        (work / "export.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (work / "README.md").write_text(readme(info), encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        work.rename(output)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return {"run_dir": str(raw.run_dir), "format": fmt, "output": str(output),
            "fold": fold, "inputs": [s.key for s in raw.inputs],
            "outputs": list(info["outputs"]), "files": files}


def _write(raw: RawModel, fmt: str, work: Path) -> list[str]:
    if fmt == "saved_model":
        write_saved_model(raw, work)
        return ["saved_model.pb", "variables/", "assets/"]
    if fmt == "keras":
        raw.model.save(work / "model.keras")
        return ["model.keras"]
    if fmt == "onnx":
        (work / "model.onnx").write_bytes(convert.to_onnx(raw))
        return ["model.onnx"]
    staging = work / "saved_model"
    write_saved_model(raw, staging)
    try:
        (work / "model.tflite").write_bytes(convert.to_tflite(staging, [
            f"{s.column} ({s.kind})" for s in raw.inputs if s.dtype == "string"]))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ["model.tflite"]


def readme(info: dict[str, Any]) -> str:
    """The export folder's README: inputs, outputs, label order, source, how to load."""
    lines = [f"# Exported from {info['run_dir']}" + (f" (fold {info['fold']})"
                                                    if info["fold"] else ""), "",
             f"Format: {info['format']} ({', '.join(info['files'])}), exported "
             f"{info['exported_at']}. Raw columns in: the run's fitted preprocessing is "
             "inside the model.", "", "## Inputs (one per raw column, a batch of rows each)",
             "", "| input | column | dtype | kind |", "|---|---|---|---|"]
    lines += [f"| `{i['name']}` | {i['column']} | {i['dtype']}"
              f"{' ' + str(i['shape']) if i['shape'] else ''} | {i['kind']} |"
              for i in info["inputs"]]
    lines += ["", f"Missing values: {info['missing_values']}.", "", "## Outputs", "",
              "| output | dtype | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {o['dtype']} | {o['meaning']} |"
              for name, o in info["outputs"].items()]
    order = [(name, o["classes"]) for name, o in info["outputs"].items() if "classes" in o]
    if order:
        lines += ["", "## Label order", ""]
        lines += [f"- `{name}`: {', '.join(map(str, labels))}" for name, labels in order]
    lines += ["", "## Loading", "", "```python", info["load"], "```", ""]
    return "\n".join(lines)

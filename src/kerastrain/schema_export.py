"""The config's JSON schema, for editors (the YAML language server) and scripts.

Generated from the pydantic models in `kerastrain.config.schema`, then adjusted where the
loader accepts more than pydantic's schema says (Keras's `{class_name, config}` form, one
metric per output without a list) and where `type` decides which keys a data source
takes. Keras's own names (layers, losses, ...) are checked against Keras at load time and
are not enumerated here: listing them needs TensorFlow (`kerastrain list layers` does).
"""

from __future__ import annotations

from typing import Any

from kerastrain.config.schema import GENERATORS, SKLEARN_SETS, SOURCE_FIELDS, SOURCE_REQUIRED

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def config_json_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) a config file must satisfy."""
    from kerastrain.config.schema import Config

    schema = Config.model_json_schema()
    defs = schema["$defs"]
    for name in ("KerasObject", "GraphNode"):
        _keras_object_forms(defs[name])
    for key in ("metrics", "weighted_metrics"):
        _single_metric_per_output(defs["CompileSpec"]["properties"][key])
    _source_fields_by_type(defs["SourceSpec"])
    return {"$schema": DIALECT, "title": "kerastrain config",
            **{k: v for k, v in schema.items() if k != "title"}}


def _keras_object_forms(obj: dict[str, Any]) -> None:
    """`{type: Dense, units: 8}` or Keras's serialized `{class_name: Dense, config: {...}}`."""
    obj["required"] = [r for r in obj.get("required", []) if r != "type"]
    if not obj["required"]:
        del obj["required"]
    obj["properties"]["class_name"] = {
        "type": "string", "description": "Keras's serialized form: the class name (same as "
                                         "type), its arguments under config."}
    obj["properties"]["config"] = {"type": "object",
                                   "description": "With class_name: the constructor arguments."}
    obj["anyOf"] = [{"required": ["type"]}, {"required": ["class_name"]}]


def _single_metric_per_output(prop: dict[str, Any]) -> None:
    """Per output, a list of metrics or a single one (`{main_output: mae}`)."""
    for option in prop.get("anyOf", []):
        if option.get("type") == "object" and "additionalProperties" in option:
            listed = option["additionalProperties"]
            option["additionalProperties"] = {"anyOf": [listed, listed["items"]]}


def _source_fields_by_type(source: dict[str, Any]) -> None:
    """Each source `type` takes its own keys, requires some, and names a known set."""
    rules = []
    for kind, allowed in SOURCE_FIELDS.items():
        then: dict[str, Any] = {"properties": {
            field: {"type": "null"} for field in source["properties"]
            if field not in allowed | {"type"}}}
        if SOURCE_REQUIRED[kind]:
            then["required"] = sorted(SOURCE_REQUIRED[kind])
        names = {"sklearn": SKLEARN_SETS, "synthetic": GENERATORS}.get(kind)
        if names:
            then["properties"]["name"] = {"enum": list(names)}
        rules.append({"if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                      "then": then})
    source["allOf"] = rules

"""The pipeline YAML as JSON Schema (`pipeline-ops schema`), for editors.

Built from the same marshmallow schemas that validate pipelines: the file's own
(pipeline/definition/config.py) and each processor's step config
(processors/config_schema.py), converted by apispec's MarshmallowPlugin. A step's
`config` is checked against its ps_type's schema (if/then on ps_type). What JSON Schema
cannot say (a template variable's name, that a procedure's SQL file exists beyond the
shipped list, depends_on naming a real step) stays `pipeline-ops validate`'s job.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import RAISE, Schema

from pipeline.definition.config import PipelineSchema, RetrySchema, StepSchema
from processors.config_schema import schema_for, templated_keys
from processors.registry import known_types
from warehouse.procedures import list_procedures

SCHEMA_ID = "https://pipeline-ops.local/schemas/pipeline.json"


def pipeline_json_schema() -> dict[str, Any]:
    spec = APISpec("pipeline-ops", "1", "3.1.0", plugins=[MarshmallowPlugin()])
    spec.components.schema("Retry", schema=RetrySchema)
    spec.components.schema("Step", schema=StepSchema)
    spec.components.schema("Pipeline", schema=PipelineSchema)
    configs: dict[str, str] = {}
    for ps_type in known_types():
        schema = schema_for(ps_type)
        if schema is None:
            continue
        name = "Config_" + ps_type.replace(".", "_")
        spec.components.schema(name, schema=schema)
        configs[ps_type] = name
    defs = _refs_to_defs(spec.to_dict()["components"]["schemas"])
    for name, schema in (
        ("Retry", RetrySchema),
        ("Step", StepSchema),
        ("Pipeline", PipelineSchema),
    ):
        _close(defs[name], schema)
    for ps_type, name in configs.items():
        config_schema = schema_for(ps_type)
        assert config_schema is not None
        _close(defs[name], config_schema)
        for key in templated_keys(config_schema):
            prop = defs[name]["properties"].get(key)
            if prop is not None:
                prop["description"] = (prop.get("description", "") + " (accepts templates)").strip()
    procedure = defs.get("Config_generic_procedure_executor", {}).get("properties", {})
    if "procedure" in procedure:
        procedure["procedure"]["enum"] = list_procedures()
    step = defs["Step"]
    step["properties"]["ps_type"]["enum"] = known_types()
    step["properties"]["config"] = {"type": "object"}
    step["allOf"] = [
        {
            "if": {"properties": {"ps_type": {"const": ps_type}}, "required": ["ps_type"]},
            "then": {"properties": {"config": {"$ref": f"#/$defs/{name}"}}},
        }
        for ps_type, name in configs.items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Pipeline Ops pipeline file",
        "$ref": "#/$defs/Pipeline",
        "$defs": defs,
    }


def _close(definition: dict[str, Any], schema: type[Schema]) -> None:
    """Unknown keys are errors where the marshmallow schema raises on them."""
    if schema.Meta.__dict__.get("unknown", getattr(schema.Meta, "unknown", None)) == RAISE:
        definition["additionalProperties"] = False
    else:
        definition.pop("additionalProperties", None)
    # Defaults that marshmallow fills (load_default) are optional in the file.
    definition.setdefault("type", "object")


def _refs_to_defs(value: Any) -> Any:
    """Point refs at $defs, and write Python's end anchor (\\Z) as JSON Schema's ($):
    editors evaluate patterns as ECMAScript regexes."""
    if isinstance(value, dict):
        return {
            k: (
                v.replace("#/components/schemas/", "#/$defs/")
                if k == "$ref" and isinstance(v, str)
                else v.replace("\\Z", "$")
                if k == "pattern" and isinstance(v, str)
                else _refs_to_defs(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_refs_to_defs(v) for v in value]
    return value

"""Step `config` schemas: what each processor accepts, checked before a run.

Each processor package declares its schemas next to its processors (`<package>/schemas.py`,
light modules: validating a pipeline never imports a processor's SDKs), registered by
ps_type in CONFIG_SCHEMAS. `pipeline-ops validate`, catalog loading and API admission all
parse pipelines through one function (pipeline/definition/config.py), which calls
`config_problems`; `pipeline-ops schema` turns the same schemas into JSON Schema.

A key that accepts a template (`${start_date}`, `{org_slug}`, ...) says so with
`templated=True` in its metadata; templates anywhere else are refused, since the value
would only be known at run time.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

# ps_type -> "module:SchemaClass". A processor without an entry has its config unchecked
# (test-only processors); every shipped one has one, which a test holds.
CONFIG_SCHEMAS: dict[str, str] = {
    "generic.noop": "processors.generic.schemas:NoopConfig",
    "generic.file_extract": "processors.generic.schemas:FileExtractConfig",
    "generic.http_extract": "processors.generic.schemas:HttpExtractConfig",
    "generic.procedure_executor": "processors.generic.schemas:ProcedureConfig",
    "genai.payg_usage": "processors.genai.schemas:PaygUsageConfig",
    "genai.payg_cost": "processors.genai.schemas:PaygCostConfig",
    "subscription.amortize": "processors.subscription.schemas:AmortizeConfig",
    "cloud.gcp_billing_export": "processors.cloud.schemas:GcpBillingExportConfig",
    "cloud.gcp_sku_prices": "processors.cloud.schemas:GcpSkuPricesConfig",
    "cloud.aws_data_export": "processors.cloud.schemas:AwsDataExportConfig",
    "cloud.azure_cost_export": "processors.cloud.schemas:AzureCostExportConfig",
    "cloud.oci_cost_report": "processors.cloud.schemas:OciCostReportConfig",
}


class StepConfig(Schema):
    """Base of every step config schema: unknown keys are errors."""

    class Meta:
        unknown = RAISE


class Text(fields.String):
    """A non-empty string; `templated=True` if it may hold a template."""

    def __init__(self, *, templated: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(min=1))
        super().__init__(metadata={"templated": templated}, **kwargs)


class Whole(fields.Integer):
    """An int as written: no "60" strings, no 1.0, no booleans."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Number(fields.Float):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Flag(fields.Boolean):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def table_name(**kwargs: Any) -> Text:
    return Text(
        validate=validate.Regexp(r"^[a-z0-9_]{1,128}$", error="must match ^[a-z0-9_]+$"),
        **kwargs,
    )


def one_of(*choices: str, **kwargs: Any) -> Text:
    return Text(validate=validate.OneOf(choices), **kwargs)


def schema_for(ps_type: str) -> type[StepConfig] | None:
    target = CONFIG_SCHEMAS.get(ps_type)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def templated_keys(schema: type[StepConfig]) -> set[str]:
    return {n for n, f in schema._declared_fields.items() if f.metadata.get("templated")}


def config_problems(
    ps_type: str, config: Mapping[str, Any], has_template: Any = None
) -> list[tuple[str, str]]:
    """(key path such as `config.path`, message) for each problem of one step's config.

    `has_template(value) -> bool` says whether a value holds a template reference; keys
    not declared templated must not.
    """
    schema = schema_for(ps_type)
    if schema is None:
        return []
    found: list[tuple[str, str]] = []
    allowed = templated_keys(schema)
    if has_template is not None:
        for key, value in config.items():
            if key in schema._declared_fields and key not in allowed and has_template(value):
                found.append((f"config.{key}", "does not accept templates"))
    try:
        schema().load(dict(config))
    except ValidationError as exc:
        known = ", ".join(sorted(schema._declared_fields))
        for key, messages in _flat(exc.messages):
            if messages == ["Unknown field."]:
                found.append((f"config.{key}", f"unknown key (known: {known})"))
            else:
                found.append((f"config.{key}", "; ".join(messages)))
    return found


def _flat(messages: Any, path: str = "") -> list[tuple[str, list[str]]]:
    if isinstance(messages, dict):
        out: list[tuple[str, list[str]]] = []
        for key, sub in messages.items():
            child = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
            out.extend(_flat(sub, str(child)))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(path, list(messages))]
    if isinstance(messages, list):
        return [pair for item in messages for pair in _flat(item, path)]
    return [(path, [str(messages)])]

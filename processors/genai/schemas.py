"""Step config schemas of the GenAI processors (see processors/config_schema.py)."""

from __future__ import annotations

from marshmallow import fields, validate

from processors.config_schema import Flag, Number, StepConfig, Text, Whole, one_of, table_name

OPENAI_ENDPOINTS = ("completions", "embeddings", "moderations")


class PaygUsageConfig(StepConfig):
    provider = Text(required=True)
    source = one_of("api", "export", "billing_export")
    endpoints = fields.List(fields.String(validate=validate.OneOf(OPENAI_ENDPOINTS)))
    destination_table = table_name()
    provider_costs_table = table_name()
    provider_costs = Flag()
    request_timeout_seconds = Whole(validate=validate.Range(min=1, max=600))
    path = Text(templated=True)
    format = one_of("csv", "jsonl", "ndjson")
    columns = fields.Dict(keys=fields.String(), values=fields.Raw())
    billing_table = Text()


class PaygCostConfig(StepConfig):
    source_table = table_name()
    provider_costs_table = table_name()
    destination_table = table_name()
    price_overrides_file = Text(templated=True)
    price_overrides_table = table_name()
    batch_discount = Number(validate=validate.Range(min=0, max=1))

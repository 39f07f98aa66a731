"""Step config schemas of the subscription processors (see processors/config_schema.py)."""

from __future__ import annotations

from marshmallow import fields

from processors.config_schema import StepConfig, Text, table_name


class AmortizeConfig(StepConfig):
    destination_table = table_name()
    default_service_category = Text()
    default_service_subcategory = Text()
    service_categories = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))

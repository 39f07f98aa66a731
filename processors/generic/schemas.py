"""Step config schemas of the generic processors (see processors/config_schema.py)."""

from __future__ import annotations

from marshmallow import INCLUDE, ValidationError, fields, validate

from processors.config_schema import Number, StepConfig, Text, one_of, table_name
from warehouse.procedures import list_procedures

COLUMN_TYPES = ("string", "int64", "float64", "date", "bool")


def _procedure_exists(name: str) -> None:
    known = list_procedures()
    if name not in known:
        raise ValidationError(
            f"no procedure {name!r} (no warehouse/sql/{name}.sql; known: {', '.join(known)})"
        )


class NoopConfig(StepConfig):
    """The no-op step takes any key (tests and examples carry data on it); sleep_seconds
    is typed."""

    class Meta:
        unknown = INCLUDE

    sleep_seconds = Number(validate=validate.Range(min=0, max=86400))


class FileExtractConfig(StepConfig):
    path = Text(required=True, templated=True)
    destination_table = table_name(required=True)
    format = one_of("csv", "jsonl", "ndjson")
    date_column = Text()
    columns = fields.Dict(
        keys=fields.String(), values=fields.String(validate=validate.OneOf(COLUMN_TYPES))
    )


class HttpExtractConfig(StepConfig):
    url = Text(required=True, templated=True)
    destination_table = table_name(required=True)
    date_column = Text()
    timeout_seconds = Number(validate=validate.Range(min=1, max=600))


class ProcedureConfig(StepConfig):
    procedure = Text(required=True, validate=_procedure_exists)
    destination_table = table_name()
    args = fields.Dict(keys=fields.String(), metadata={"templated": True})

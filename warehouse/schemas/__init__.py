"""Table schemas the engine knows ahead of time (without lineage columns), by source:
genai.py (GenAI and subscription costs), cloud.py, gcp.py, focus.py (FOCUS 1.3).

`bootstrap` creates these tables in each org dataset and `bootstrap-sync` adds
columns that a newer release defines to tables that already exist. Both
backends take their DDL from these same definitions.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline_ops_core.errors import TerminalError
from warehouse.base import LINEAGE_FIELDS
from warehouse.schemas.cloud import CLOUD_TABLE_SCHEMAS
from warehouse.schemas.focus import FOCUS_TABLE_SCHEMAS
from warehouse.schemas.gcp import GCP_TABLE_SCHEMAS
from warehouse.schemas.genai import GENAI_TABLE_SCHEMAS

# The FOCUS table, which sp_convert_to_focus creates (see schemas/focus.py), and the tables
# `bootstrap` creates.
__all__ = ["FOCUS_TABLE_SCHEMAS", "TABLE_SCHEMAS", "retype_conflicts", "with_lineage"]

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "demo_usage_raw": pa.schema(
        [
            ("usage_date", pa.date32()),
            ("provider", pa.string()),
            ("model", pa.string()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("requests", pa.int64()),
        ]
    ),
    "demo_prices": pa.schema(
        [
            ("provider", pa.string()),
            ("model", pa.string()),
            ("input_per_mtok", pa.float64()),
            ("output_per_mtok", pa.float64()),
        ]
    ),
    "demo_daily_cost": pa.schema(
        [
            ("usage_date", pa.date32()),
            ("provider", pa.string()),
            ("model", pa.string()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("requests", pa.int64()),
            ("cost_usd", pa.float64()),
        ]
    ),
}

# GenAI usage and cost, and subscriptions (the FOCUS 1.3 table is sp_convert_to_focus's).
TABLE_SCHEMAS.update(GENAI_TABLE_SCHEMAS)
# Raw rows of the cloud billing exports.
TABLE_SCHEMAS.update(CLOUD_TABLE_SCHEMAS)
TABLE_SCHEMAS.update(GCP_TABLE_SCHEMAS)


def with_lineage(schema: pa.Schema) -> pa.Schema:
    return pa.schema(list(schema) + list(LINEAGE_FIELDS))


def retype_conflicts(have: pa.Schema, want: pa.Schema) -> list[str]:
    """Columns a table has with another type than `want` gives them, described.

    Types compare as the BigQuery types both backends store, so int32 and int64, or a
    JSON and a string column, are the same. Schema sync never changes these by itself.
    """

    # BigQuery's type names are the ones an operator reads in reports (and the backend's
    # module is only imported when something is compared).
    from warehouse.bigquery.types import bq_type_name

    def type_of(field: pa.Field) -> str:
        try:
            return bq_type_name(field)
        except TerminalError:
            return str(field.type)  # a type we never create; still worth reporting

    conflicts = []
    for field in want:
        if field.name in have.names:
            old, new = type_of(have.field(field.name)), type_of(field)
            if old != new:
                conflicts.append(f"{field.name} is {old}, the schema says {new}")
    return conflicts

"""Table schemas the engine knows ahead of time (without lineage columns).

`bootstrap` creates these tables in each org dataset and `bootstrap-sync` adds
columns that a newer release defines to tables that already exist. Both
backends take their DDL from these same definitions.
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.base import LINEAGE_FIELDS

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


def with_lineage(schema: pa.Schema) -> pa.Schema:
    return pa.schema(list(schema) + list(LINEAGE_FIELDS))

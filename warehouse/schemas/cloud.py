"""Raw tables of the cloud billing pipelines.

AWS (FOCUS 1.2 export), Azure (FocusCost export) and OCI (FOCUS reports) deliver files that
are already FOCUS-shaped, in different FOCUS versions. Their rows land in one raw layout,
FOCUS_EXPORT_RAW: the snake_case of every FOCUS 1.3 column (the warehouse accepts only
lower-case identifiers), the charge date the rows are keyed by, the source's extension
columns as JSON, and the file each row came from. Each cloud has its own raw table of this
layout and its own procedure (warehouse/sql/sp_focus_<cloud>.sql) mapping it to FOCUS 1.3.
GCP's export is not FOCUS-shaped; its tables live in schemas/gcp.py.
"""

from __future__ import annotations

import re

import pyarrow as pa

from warehouse.schemas.focus import FOCUS_1_3_COLUMNS

_TYPES = {
    "String": pa.string(),
    "JSON": pa.string(),
    "Decimal": pa.float64(),
    "Date/Time": pa.timestamp("us", tz="UTC"),
}
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """FOCUS PascalCase -> the warehouse's lower-case form: SkuPriceId -> sku_price_id."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


# FOCUS column name -> raw column name, in FOCUS order.
FOCUS_RAW_NAMES: dict[str, str] = {name: snake_case(name) for name, _ in FOCUS_1_3_COLUMNS}

FOCUS_EXPORT_RAW = pa.schema(
    [(snake_case(name), _TYPES[kind]) for name, kind in FOCUS_1_3_COLUMNS]
    + [
        ("charge_date", pa.date32()),  # UTC date of ChargePeriodStart: the idempotency key
        ("x_extensions", pa.string()),  # the source's own columns (x_*, oci_*), as JSON
        ("x_source_file", pa.string()),
    ]
)

CLOUD_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "aws_focus_export_raw": FOCUS_EXPORT_RAW,
    "azure_focus_export_raw": FOCUS_EXPORT_RAW,
    "oci_focus_report_raw": FOCUS_EXPORT_RAW,
}

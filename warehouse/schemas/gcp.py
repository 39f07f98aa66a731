"""Tables of the GCP billing pipeline: the flattened export and the SKU list prices.

`gcp_billing_export_raw` holds one row per row of the customer's Cloud Billing export
(record_type 'charge') plus one row per credit of it (record_type 'credit', `cost` = the
credit's negative amount), so SUM(cost) over the raw rows is the export's net total. Nested
export fields are flattened to `<record>_<field>` columns; labels are a JSON object text.
Columns the export table lacks (older or standard exports) are null.

`gcp_sku_prices` holds Cloud Billing Catalog list prices, one row per SKU price tier.

warehouse/sql/sp_focus_gcp.sql creates both tables when they are missing (an org may not run
the catalog step); tests/unit/cloud/test_gcp_focus_sql.py holds the DDL and these in step.
"""

from __future__ import annotations

import pyarrow as pa

_TS = pa.timestamp("us", tz="UTC")

GCP_BILLING_EXPORT_RAW = pa.schema(
    [
        ("usage_date", pa.date32()),  # UTC date of usage_start_time: the idempotency key
        ("record_type", pa.string()),  # 'charge' | 'credit'
        ("billing_account_id", pa.string()),
        ("invoice_month", pa.string()),  # YYYYMM
        ("cost_type", pa.string()),  # regular | tax | adjustment | rounding error
        ("service_id", pa.string()),
        ("service_description", pa.string()),
        ("sku_id", pa.string()),
        ("sku_description", pa.string()),
        ("usage_start_time", _TS),
        ("usage_end_time", _TS),
        ("project_id", pa.string()),
        ("project_number", pa.string()),
        ("project_name", pa.string()),
        ("location_location", pa.string()),
        ("location_country", pa.string()),
        ("location_region", pa.string()),
        ("location_zone", pa.string()),
        ("labels", pa.string()),  # JSON object text {"key": "value"}
        ("export_time", _TS),
        ("cost", pa.float64()),  # charge: the row's cost; credit: the credit's amount (< 0)
        ("cost_at_list", pa.float64()),
        ("currency", pa.string()),
        ("currency_conversion_rate", pa.float64()),
        # Amounts are null on credit rows (they repeat no usage); units are kept.
        ("usage_amount", pa.float64()),
        ("usage_unit", pa.string()),
        ("usage_amount_in_pricing_units", pa.float64()),
        ("usage_pricing_unit", pa.string()),
        ("credit_type", pa.string()),
        ("credit_name", pa.string()),
        ("credit_id", pa.string()),
        ("credit_full_name", pa.string()),
        ("adjustment_id", pa.string()),
        ("adjustment_description", pa.string()),
        ("adjustment_mode", pa.string()),
        ("adjustment_type", pa.string()),
        ("transaction_type", pa.string()),
        ("seller_name", pa.string()),
        ("resource_name", pa.string()),  # detailed export only
        ("resource_global_name", pa.string()),
        ("price_effective_price", pa.float64()),
        ("price_tier_start_amount", pa.float64()),
        ("price_unit", pa.string()),
        ("price_pricing_unit_quantity", pa.float64()),
        ("source_table", pa.string()),  # project.dataset.table the row was read from
    ]
)

GCP_SKU_PRICES = pa.schema(
    [
        ("price_date", pa.date32()),  # the run's start date: the snapshot's key
        ("service_id", pa.string()),
        ("service_name", pa.string()),
        ("sku_id", pa.string()),
        ("sku_name", pa.string()),
        ("description", pa.string()),
        ("resource_family", pa.string()),
        ("resource_group", pa.string()),
        ("usage_type", pa.string()),
        ("service_regions", pa.string()),  # JSON array text
        ("pricing_unit", pa.string()),
        ("pricing_unit_description", pa.string()),
        ("base_unit", pa.string()),
        ("base_unit_conversion_factor", pa.float64()),
        ("tier_start_amount", pa.float64()),
        ("unit_price", pa.float64()),  # units + nanos / 1e9, per pricing_unit
        ("currency", pa.string()),
        ("effective_time", _TS),
        ("effective_date", pa.date32()),
    ]
)

GCP_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "gcp_billing_export_raw": GCP_BILLING_EXPORT_RAW,
    "gcp_sku_prices": GCP_SKU_PRICES,
}

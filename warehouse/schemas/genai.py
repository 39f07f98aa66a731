"""Schemas of the GenAI and subscription cost tables.

Kept in warehouse/ so `bootstrap` (warehouse/schemas/__init__.py) and the processors that
write them (processors/genai, processors/subscription) share one definition; the procedure
sp_convert_to_focus creates the same tables when they are missing, and a test holds the
two in step. JSON columns are pa.json_() and stored as text, as the warehouse keeps JSON.
"""

from __future__ import annotations

import pyarrow as pa

GENAI_USAGE_DIMENSIONS: tuple[str, ...] = (
    "project_or_workspace_id",
    "api_key_id",
    "service_tier",
    "context_window",
)
GENAI_TOKEN_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "input_audio_tokens",  # all audio input, cached audio included
    "cached_input_audio_tokens",
    "output_audio_tokens",
    "input_image_tokens",  # all image input, cached images included
    "cached_input_image_tokens",
    "output_image_tokens",
    "web_search_requests",
    "requests",
)

GENAI_USAGE_RAW = pa.schema(
    [
        ("usage_date", pa.date32()),
        ("provider", pa.string()),
        ("model", pa.string()),
        *((name, pa.string()) for name in GENAI_USAGE_DIMENSIONS),
        ("batch", pa.bool_()),
        *((name, pa.int64()) for name in GENAI_TOKEN_COLUMNS),
        ("source", pa.string()),
    ]
)

GENAI_PROVIDER_COSTS = pa.schema(
    [
        ("usage_date", pa.date32()),
        ("provider", pa.string()),
        ("project_or_workspace_id", pa.string()),
        ("model", pa.string()),
        ("line_item", pa.string()),
        ("cost_type", pa.string()),
        ("token_type", pa.string()),
        ("service_tier", pa.string()),
        ("context_window", pa.string()),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("source", pa.string()),
    ]
)

GENAI_COSTS = pa.schema(
    [
        ("usage_date", pa.date32()),
        ("provider", pa.string()),
        ("provider_name", pa.string()),
        ("model", pa.string()),
        ("model_id", pa.string()),
        ("project_or_workspace_id", pa.string()),
        ("api_key_id", pa.string()),
        ("service_tier", pa.string()),
        ("context_window", pa.string()),
        ("batch", pa.bool_()),
        ("charge_type", pa.string()),
        ("sku_meter", pa.string()),
        ("quantity", pa.int64()),
        ("unit", pa.string()),
        ("requests", pa.int64()),
        ("list_unit_price", pa.float64()),
        ("list_cost", pa.float64()),
        ("effective_unit_price", pa.float64()),
        ("effective_cost", pa.float64()),
        ("provider_reported_cost", pa.float64()),
        ("price_status", pa.string()),
        ("price_source", pa.string()),
        ("currency", pa.string()),
        # How provider_reported_cost was put on this line: 'report' (the report names
        # this charge), 'shared' (a total shared by list cost), 'report+shared', or null.
        ("cost_allocation", pa.string()),
    ]
)

SUBSCRIPTION_COSTS_DAILY = pa.schema(
    [
        ("cost_date", pa.date32()),
        ("subscription_id", pa.string()),
        ("provider", pa.string()),
        ("provider_name", pa.string()),
        ("plan", pa.string()),
        ("seats", pa.int64()),
        ("unit_price", pa.float64()),  # per seat per billing cycle
        ("billing_cycle", pa.string()),
        ("currency", pa.string()),
        ("period_start", pa.date32()),  # the billing cycle holding cost_date
        ("period_end", pa.date32()),  # exclusive
        ("period_days", pa.int64()),
        ("seat_day_price", pa.float64()),  # unit_price / full cycle days
        ("daily_cost", pa.float64()),  # amortized: seats x seat_day_price
        ("billed_cost", pa.float64()),  # the cycle's invoice, on its first day; else 0
        ("service_category", pa.string()),
        ("service_subcategory", pa.string()),
    ]
)

GENAI_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "genai_payg_usage_raw": GENAI_USAGE_RAW,
    "genai_payg_provider_costs": GENAI_PROVIDER_COSTS,
    "genai_payg_costs": GENAI_COSTS,
    "subscription_costs_daily": SUBSCRIPTION_COSTS_DAILY,
}

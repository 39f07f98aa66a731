"""The FOCUS 1.3 table every cost source ends in (cost_data_standard_1_3): the spec's 65
Cost and Usage columns in its order, then our x_ extension columns.

sp_convert_to_focus and the cloud procedures create it with this schema; a test holds
the two in step. JSON columns are pa.json_() and stored as text.
"""

from __future__ import annotations

import pyarrow as pa

_FOCUS_TYPES = {
    "String": pa.string(),
    "Decimal": pa.float64(),
    "Date/Time": pa.timestamp("us", tz="UTC"),
    "JSON": pa.json_(pa.string()),
}
# (name, FOCUS type) of the 65 FOCUS 1.3 Cost and Usage columns, in the spec's order.
FOCUS_1_3_COLUMNS: tuple[tuple[str, str], ...] = (
    ("AllocatedMethodDetails", "JSON"),
    ("AllocatedMethodId", "String"),
    ("AllocatedResourceId", "String"),
    ("AllocatedResourceName", "String"),
    ("AllocatedTags", "JSON"),
    ("AvailabilityZone", "String"),
    ("BilledCost", "Decimal"),
    ("BillingAccountId", "String"),
    ("BillingAccountName", "String"),
    ("BillingAccountType", "String"),
    ("BillingCurrency", "String"),
    ("BillingPeriodEnd", "Date/Time"),
    ("BillingPeriodStart", "Date/Time"),
    ("CapacityReservationId", "String"),
    ("CapacityReservationStatus", "String"),
    ("ChargeCategory", "String"),
    ("ChargeClass", "String"),
    ("ChargeDescription", "String"),
    ("ChargeFrequency", "String"),
    ("ChargePeriodEnd", "Date/Time"),
    ("ChargePeriodStart", "Date/Time"),
    ("CommitmentDiscountCategory", "String"),
    ("CommitmentDiscountId", "String"),
    ("CommitmentDiscountName", "String"),
    ("CommitmentDiscountQuantity", "Decimal"),
    ("CommitmentDiscountStatus", "String"),
    ("CommitmentDiscountType", "String"),
    ("CommitmentDiscountUnit", "String"),
    ("ConsumedQuantity", "Decimal"),
    ("ConsumedUnit", "String"),
    ("ContractApplied", "JSON"),
    ("ContractedCost", "Decimal"),
    ("ContractedUnitPrice", "Decimal"),
    ("EffectiveCost", "Decimal"),
    ("HostProviderName", "String"),
    ("InvoiceId", "String"),
    ("InvoiceIssuerName", "String"),
    ("ListCost", "Decimal"),
    ("ListUnitPrice", "Decimal"),
    ("PricingCategory", "String"),
    ("PricingCurrency", "String"),
    ("PricingCurrencyContractedUnitPrice", "Decimal"),
    ("PricingCurrencyEffectiveCost", "Decimal"),
    ("PricingCurrencyListUnitPrice", "Decimal"),
    ("PricingQuantity", "Decimal"),
    ("PricingUnit", "String"),
    ("ProviderName", "String"),
    ("PublisherName", "String"),
    ("RegionId", "String"),
    ("RegionName", "String"),
    ("ResourceId", "String"),
    ("ResourceName", "String"),
    ("ResourceType", "String"),
    ("ServiceCategory", "String"),
    ("ServiceName", "String"),
    ("ServiceProviderName", "String"),
    ("ServiceSubcategory", "String"),
    ("SkuId", "String"),
    ("SkuMeter", "String"),
    ("SkuPriceDetails", "JSON"),
    ("SkuPriceId", "String"),
    ("SubAccountId", "String"),
    ("SubAccountName", "String"),
    ("SubAccountType", "String"),
    ("Tags", "JSON"),
)
# Our extension columns (FOCUS reserves the x_ prefix for them); lineage follows.
FOCUS_EXTENSIONS: tuple[tuple[str, pa.DataType], ...] = (
    ("x_provider", pa.string()),  # the pipeline provider key; the idempotency unit
    ("x_source", pa.string()),  # genai_payg | saas_subscription
    ("x_model", pa.string()),
    ("x_charge_type", pa.string()),
    ("x_price_status", pa.string()),  # priced | override | unpriced | subscription
    ("x_provider_reported_cost", pa.float64()),
    # The price data that priced the row (e.g. "genai-prices 0.0.30", or an updated
    # snapshot's source and date); null where nobody priced it or the cloud billed it.
    ("x_price_source", pa.string()),
    # GenAI: how x_provider_reported_cost reached this charge line (report | shared).
    ("x_cost_allocation", pa.string()),
)

COST_DATA_STANDARD_1_3 = pa.schema(
    [(name, _FOCUS_TYPES[kind]) for name, kind in FOCUS_1_3_COLUMNS] + list(FOCUS_EXTENSIONS)
)

# FOCUS mandates PascalCase column names, which the warehouse's identifier check
# (warehouse.base.check_identifier, lower-case only) refuses, so `bootstrap` can't create
# this table through ensure_table yet; sp_convert_to_focus creates it with this schema.
FOCUS_TABLE_SCHEMAS: dict[str, pa.Schema] = {"cost_data_standard_1_3": COST_DATA_STANDARD_1_3}

"""Google Cloud: the Cloud Billing export in BigQuery (cloud.gcp_billing_export) and the
Cloud Billing Catalog list prices (cloud.gcp_sku_prices)."""

from __future__ import annotations

from pipeline_ops_core.extras import require

require("bigquery", "the Google Cloud processors (cloud.gcp_billing_export, cloud.gcp_sku_prices)")

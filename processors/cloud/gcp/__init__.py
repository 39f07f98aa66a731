"""Google Cloud: the Cloud Billing export in BigQuery (cloud.gcp_billing_export) and the
Cloud Billing Catalog list prices (cloud.gcp_sku_prices)."""

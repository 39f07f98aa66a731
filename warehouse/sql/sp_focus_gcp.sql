-- procedure: sp_focus_gcp(p_start_date DATE, p_end_date DATE, p_org_slug STRING, p_pipeline_id STRING, p_credential_id STRING, p_run_id STRING)
-- Rebuilds the org's GCP rows of cost_data_standard_1_3 (FOCUS 1.3) for the run's charge
-- dates from gcp_billing_export_raw (every credential of the org), pricing ListCost with
-- gcp_sku_prices where the export has no cost_at_list. Idempotent per (org, 'gcp', date):
-- the slice is deleted, then rebuilt from what the raw table holds now. The dates rebuilt are
-- the run's [p_start_date, p_end_date] plus any usage date this run's extract rewrote
-- (lookback_days re-reads days before the run's start to pick up late corrections).
--
-- Mapping notes:
-- * One FOCUS row per raw row. Charge rows: ChargeCategory Usage (cost_type regular), Tax
--   (tax), Adjustment (adjustment, rounding error). Credit rows (one per export credit):
--   ChargeCategory Credit, BilledCost = EffectiveCost = the credit's (negative) amount, so
--   SUM(BilledCost) = SUM(cost) + SUM(credits.amount) of the export, its invoice total.
-- * Committed use discount credits (COMMITTED_USAGE_DISCOUNT: resource-based, Usage;
--   COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE: spend-based, Spend) fill CommitmentDiscount*,
--   with Status Used: the export shows the commitment's applied part only.
-- * ListCost: the export's cost_at_list; else usage.amount_in_pricing_units x the Catalog
--   list price of the SKU's first tier (latest snapshot); else cost (x_price_status says
--   which). Credits have no list or contracted value (0); tax and adjustments list at cost.
-- * PricingQuantity/PricingUnit are set on Usage rows only (0 / 'Units' where the export has
--   none): FOCUS wants them null on Tax rows and allows null on credits and adjustments.
-- * Units are GCP's (usage.unit, usage.pricing_unit) in FOCUS Unit Format where known
--   ("gibibyte month" -> GiB-Months, "seconds" -> Seconds); others pass as they are.
-- * Tags are the resource labels as a JSON object text; JSON columns are stored as text.
-- * focus_1_3_conformed_select applies FOCUS's pricing rules around this SELECT: credits and
--   adjustments carry no SkuPriceId, so no prices, quantities or PricingCategory.
-- * The raw and price tables are created when missing, so an org that never ran the extract
--   or the catalog step converts to an empty slice or prices at cost.

CREATE TABLE IF NOT EXISTS `{dataset}.gcp_billing_export_raw` (
  usage_date DATE,
  record_type STRING,
  billing_account_id STRING,
  invoice_month STRING,
  cost_type STRING,
  service_id STRING,
  service_description STRING,
  sku_id STRING,
  sku_description STRING,
  usage_start_time TIMESTAMP,
  usage_end_time TIMESTAMP,
  project_id STRING,
  project_number STRING,
  project_name STRING,
  location_location STRING,
  location_country STRING,
  location_region STRING,
  location_zone STRING,
  labels STRING,
  export_time TIMESTAMP,
  cost FLOAT64,
  cost_at_list FLOAT64,
  currency STRING,
  currency_conversion_rate FLOAT64,
  usage_amount FLOAT64,
  usage_unit STRING,
  usage_amount_in_pricing_units FLOAT64,
  usage_pricing_unit STRING,
  credit_type STRING,
  credit_name STRING,
  credit_id STRING,
  credit_full_name STRING,
  adjustment_id STRING,
  adjustment_description STRING,
  adjustment_mode STRING,
  adjustment_type STRING,
  transaction_type STRING,
  seller_name STRING,
  resource_name STRING,
  resource_global_name STRING,
  price_effective_price FLOAT64,
  price_tier_start_amount FLOAT64,
  price_unit STRING,
  price_pricing_unit_quantity FLOAT64,
  source_table STRING,
  x_org_slug STRING NOT NULL,
  x_pipeline_id STRING NOT NULL,
  x_credential_id STRING NOT NULL,
  x_pipeline_run_date DATE NOT NULL,
  x_run_id STRING NOT NULL,
  x_ingested_at TIMESTAMP NOT NULL,
  x_ingestion_date DATE NOT NULL
);

CREATE TABLE IF NOT EXISTS `{dataset}.gcp_sku_prices` (
  price_date DATE,
  service_id STRING,
  service_name STRING,
  sku_id STRING,
  sku_name STRING,
  description STRING,
  resource_family STRING,
  resource_group STRING,
  usage_type STRING,
  service_regions STRING,
  pricing_unit STRING,
  pricing_unit_description STRING,
  base_unit STRING,
  base_unit_conversion_factor FLOAT64,
  tier_start_amount FLOAT64,
  unit_price FLOAT64,
  currency STRING,
  effective_time TIMESTAMP,
  effective_date DATE,
  x_org_slug STRING NOT NULL,
  x_pipeline_id STRING NOT NULL,
  x_credential_id STRING NOT NULL,
  x_pipeline_run_date DATE NOT NULL,
  x_run_id STRING NOT NULL,
  x_ingested_at TIMESTAMP NOT NULL,
  x_ingestion_date DATE NOT NULL
);

-- include: focus_1_3_table

DELETE FROM `{dataset}.cost_data_standard_1_3`
WHERE x_org_slug = @p_org_slug
  AND x_provider = 'gcp'
  AND (
    x_pipeline_run_date BETWEEN @p_start_date AND @p_end_date
    OR x_pipeline_run_date IN (
      SELECT w.usage_date FROM `{dataset}.gcp_billing_export_raw` AS w
      WHERE w.x_org_slug = @p_org_slug AND w.x_run_id = @p_run_id
    )
  );

INSERT INTO `{dataset}.cost_data_standard_1_3` (
-- include: focus_1_3_columns
)
-- include: focus_1_3_conformed_select
FROM (
SELECT
  CAST(NULL AS STRING) AS AllocatedMethodDetails,
  CAST(NULL AS STRING) AS AllocatedMethodId,
  CAST(NULL AS STRING) AS AllocatedResourceId,
  CAST(NULL AS STRING) AS AllocatedResourceName,
  CAST(NULL AS STRING) AS AllocatedTags,
  g.location_zone AS AvailabilityZone,
  g.cost AS BilledCost,
  g.billing_account_id AS BillingAccountId,
  g.billing_account_id AS BillingAccountName,
  'Billing Account' AS BillingAccountType,
  g.currency AS BillingCurrency,
  TIMESTAMP(DATE_ADD(g.billing_period_start, INTERVAL 1 MONTH)) AS BillingPeriodEnd,
  TIMESTAMP(g.billing_period_start) AS BillingPeriodStart,
  CAST(NULL AS STRING) AS CapacityReservationId,
  CAST(NULL AS STRING) AS CapacityReservationStatus,
  g.charge_category AS ChargeCategory,
  CAST(NULL AS STRING) AS ChargeClass,
  IF(
    g.charge_category = 'Credit',
    CONCAT(IFNULL(COALESCE(g.credit_full_name, g.credit_name), 'Credit'), ' (', IFNULL(g.credit_type, 'credit'), ') on ', IFNULL(COALESCE(g.sku_description, g.service_description), 'usage')),
    COALESCE(g.sku_description, g.adjustment_description, g.service_description, CONCAT('Google Cloud ', IFNULL(g.cost_type, 'charge')))
  ) AS ChargeDescription,
  IF(g.charge_category IN ('Usage', 'Credit'), 'Usage-Based', 'One-Time') AS ChargeFrequency,
  g.usage_end_time AS ChargePeriodEnd,
  g.usage_start_time AS ChargePeriodStart,
  IF(g.is_cud, IF(g.credit_type = 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE', 'Spend', 'Usage'), CAST(NULL AS STRING)) AS CommitmentDiscountCategory,
  IF(g.is_cud, COALESCE(g.credit_id, g.credit_name), CAST(NULL AS STRING)) AS CommitmentDiscountId,
  IF(g.is_cud, COALESCE(g.credit_full_name, g.credit_name, g.credit_id), CAST(NULL AS STRING)) AS CommitmentDiscountName,
  CAST(NULL AS FLOAT64) AS CommitmentDiscountQuantity,
  IF(g.is_cud, 'Used', CAST(NULL AS STRING)) AS CommitmentDiscountStatus,
  IF(g.is_cud, 'Committed Use Discount', CAST(NULL AS STRING)) AS CommitmentDiscountType,
  CAST(NULL AS STRING) AS CommitmentDiscountUnit,
  IF(g.charge_category = 'Usage', g.usage_amount, CAST(NULL AS FLOAT64)) AS ConsumedQuantity,
  IF(g.charge_category = 'Usage', g.consumed_unit, CAST(NULL AS STRING)) AS ConsumedUnit,
  CAST(NULL AS STRING) AS ContractApplied,
  g.contracted_cost AS ContractedCost,
  g.contracted_unit_price AS ContractedUnitPrice,
  g.cost AS EffectiveCost,
  'Google Cloud' AS HostProviderName,
  CAST(NULL AS STRING) AS InvoiceId,
  'Google Cloud' AS InvoiceIssuerName,
  g.list_cost AS ListCost,
  g.list_unit_price AS ListUnitPrice,
  IF(g.charge_category = 'Usage', 'Standard', CAST(NULL AS STRING)) AS PricingCategory,
  g.currency AS PricingCurrency,
  g.contracted_unit_price AS PricingCurrencyContractedUnitPrice,
  g.cost AS PricingCurrencyEffectiveCost,
  g.list_unit_price AS PricingCurrencyListUnitPrice,
  IF(g.charge_category = 'Usage', IFNULL(g.usage_amount_in_pricing_units, 0), CAST(NULL AS FLOAT64)) AS PricingQuantity,
  IF(g.charge_category = 'Usage', COALESCE(g.pricing_unit, g.consumed_unit, 'Units'), CAST(NULL AS STRING)) AS PricingUnit,
  'Google Cloud' AS ProviderName,
  g.publisher AS PublisherName,
  g.location_region AS RegionId,
  g.location_region AS RegionName,
  g.resource_global_name AS ResourceId,
  g.resource_name AS ResourceName,
  CAST(NULL AS STRING) AS ResourceType,
  IFNULL(g.service_category, 'Other') AS ServiceCategory,
  COALESCE(g.service_description, g.service_id, 'Google Cloud') AS ServiceName,
  g.publisher AS ServiceProviderName,
  IFNULL(g.service_subcategory, 'Other (Other)') AS ServiceSubcategory,
  g.sku_id AS SkuId,
  g.sku_description AS SkuMeter,
  CAST(NULL AS STRING) AS SkuPriceDetails,
  IF(g.charge_category = 'Usage', g.sku_id, CAST(NULL AS STRING)) AS SkuPriceId,
  g.project_id AS SubAccountId,
  COALESCE(g.project_name, g.project_id) AS SubAccountName,
  IF(g.project_id IS NULL, CAST(NULL AS STRING), 'Project') AS SubAccountType,
  g.labels AS Tags,
  'gcp' AS x_provider,
  'gcp_billing_export' AS x_source,
  CAST(NULL AS STRING) AS x_model,
  IF(g.record_type = 'credit', LOWER(IFNULL(g.credit_type, 'credit')), IFNULL(g.cost_type, 'regular')) AS x_charge_type,
  g.price_status AS x_price_status,
  g.cost AS x_provider_reported_cost,
  CAST(NULL AS STRING) AS x_price_source,
  CAST(NULL AS STRING) AS x_cost_allocation,
  @p_org_slug AS x_org_slug,
  @p_pipeline_id AS x_pipeline_id,
  @p_credential_id AS x_credential_id,
  g.usage_date AS x_pipeline_run_date,
  @p_run_id AS x_run_id,
  CURRENT_TIMESTAMP() AS x_ingested_at,
  CURRENT_DATE() AS x_ingestion_date
FROM (
  SELECT
    c.*,
    IF(c.charge_category = 'Credit', 0.0, IF(c.charge_category <> 'Usage', c.cost, COALESCE(c.cost_at_list, c.catalog_unit_price * c.usage_amount_in_pricing_units, c.cost))) AS list_cost,
    IF(c.charge_category = 'Usage', IFNULL(COALESCE(SAFE_DIVIDE(c.cost_at_list, c.usage_amount_in_pricing_units), c.catalog_unit_price, SAFE_DIVIDE(c.cost, c.usage_amount_in_pricing_units)), 0), CAST(NULL AS FLOAT64)) AS list_unit_price,
    IF(c.charge_category = 'Credit', 0.0, c.cost) AS contracted_cost,
    IF(c.charge_category = 'Usage', IFNULL(SAFE_DIVIDE(c.cost, c.usage_amount_in_pricing_units), 0), CAST(NULL AS FLOAT64)) AS contracted_unit_price,
    IF(
      c.charge_category <> 'Usage',
      'billed',
      IF(c.cost_at_list IS NOT NULL, 'cost_at_list', IF(c.catalog_unit_price IS NOT NULL AND c.usage_amount_in_pricing_units IS NOT NULL, 'catalog', 'billed'))
    ) AS price_status,
    sc.service_category,
    sc.service_subcategory,
    COALESCE(cu.focus_unit, c.usage_unit) AS consumed_unit,
    COALESCE(pu.focus_unit, c.usage_pricing_unit) AS pricing_unit
  FROM (
    SELECT
      r.*,
      IF(
        r.record_type = 'credit',
        'Credit',
        IF(LOWER(IFNULL(r.cost_type, '')) = 'tax', 'Tax', IF(LOWER(IFNULL(r.cost_type, '')) IN ('adjustment', 'rounding error', 'rounding_error'), 'Adjustment', 'Usage'))
      ) AS charge_category,
      IFNULL(r.record_type = 'credit' AND r.credit_type IN ('COMMITTED_USAGE_DISCOUNT', 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE'), FALSE) AS is_cud,
      COALESCE(SAFE_CAST(CONCAT(SUBSTR(r.invoice_month, 1, 4), '-', SUBSTR(r.invoice_month, 5, 2), '-01') AS DATE), DATE_TRUNC(r.usage_date, MONTH)) AS billing_period_start,
      IF(r.transaction_type IN ('THIRD_PARTY_RESELLER', 'THIRD_PARTY_AGENCY') AND r.seller_name IS NOT NULL, r.seller_name, 'Google Cloud') AS publisher,
      p.unit_price AS catalog_unit_price
    FROM `{dataset}.gcp_billing_export_raw` AS r
    LEFT JOIN (
      SELECT sp.sku_id, sp.currency, MAX(sp.unit_price) AS unit_price
      FROM `{dataset}.gcp_sku_prices` AS sp
      INNER JOIN (
        SELECT sku_id, currency, MAX(price_date) AS price_date
        FROM `{dataset}.gcp_sku_prices`
        WHERE x_org_slug = @p_org_slug AND tier_start_amount = 0
        GROUP BY sku_id, currency
      ) AS latest
        ON sp.sku_id = latest.sku_id AND sp.currency = latest.currency AND sp.price_date = latest.price_date
      WHERE sp.x_org_slug = @p_org_slug AND sp.tier_start_amount = 0
      GROUP BY sp.sku_id, sp.currency
    ) AS p
      ON p.sku_id = r.sku_id AND p.currency = r.currency AND r.record_type = 'charge'
    WHERE r.x_org_slug = @p_org_slug
      AND (
        r.usage_date BETWEEN @p_start_date AND @p_end_date
        OR r.usage_date IN (
          SELECT w.usage_date FROM `{dataset}.gcp_billing_export_raw` AS w
          WHERE w.x_org_slug = @p_org_slug AND w.x_run_id = @p_run_id
        )
      )
  ) AS c
  LEFT JOIN (
    -- service.description -> FOCUS ServiceCategory / ServiceSubcategory; others: Other.
    SELECT 'Compute Engine' AS service_description, 'Compute' AS service_category, 'Virtual Machines' AS service_subcategory
    UNION ALL SELECT 'Kubernetes Engine', 'Compute', 'Containers'
    UNION ALL SELECT 'Cloud Run', 'Compute', 'Serverless Compute'
    UNION ALL SELECT 'Cloud Run Functions', 'Compute', 'Serverless Compute'
    UNION ALL SELECT 'Cloud Functions', 'Compute', 'Serverless Compute'
    UNION ALL SELECT 'Cloud Storage', 'Storage', 'Object Storage'
    UNION ALL SELECT 'Filestore', 'Storage', 'File Storage'
    UNION ALL SELECT 'BigQuery', 'Databases', 'Data Warehouses'
    UNION ALL SELECT 'Cloud SQL', 'Databases', 'Relational Databases'
    UNION ALL SELECT 'Cloud Spanner', 'Databases', 'Relational Databases'
    UNION ALL SELECT 'Cloud Bigtable', 'Databases', 'NoSQL Databases'
    UNION ALL SELECT 'Cloud Firestore', 'Databases', 'NoSQL Databases'
    UNION ALL SELECT 'Cloud Memorystore for Redis', 'Databases', 'Caching'
    UNION ALL SELECT 'Vertex AI', 'AI and Machine Learning', 'Generative AI'
    UNION ALL SELECT 'Gemini API', 'AI and Machine Learning', 'Generative AI'
    UNION ALL SELECT 'Networking', 'Networking', 'Network Infrastructure'
    UNION ALL SELECT 'Cloud CDN', 'Networking', 'Content Delivery'
    UNION ALL SELECT 'Cloud Logging', 'Management and Governance', 'Observability'
    UNION ALL SELECT 'Cloud Monitoring', 'Management and Governance', 'Observability'
    UNION ALL SELECT 'Support', 'Management and Governance', 'Support'
    UNION ALL SELECT 'Cloud Pub/Sub', 'Integration', 'Messaging'
    UNION ALL SELECT 'Workflows', 'Integration', 'Workflow Orchestration'
    UNION ALL SELECT 'Secret Manager', 'Security', 'Secret Management'
    UNION ALL SELECT 'Cloud Key Management Service (KMS)', 'Security', 'Secret Management'
    UNION ALL SELECT 'Dataflow', 'Analytics', 'Data Processing'
    UNION ALL SELECT 'Cloud Dataproc', 'Analytics', 'Data Processing'
    UNION ALL SELECT 'Cloud Build', 'Developer Tools', 'Continuous Integration and Deployment'
  ) AS sc
    ON sc.service_description = c.service_description
  LEFT JOIN (
-- include: gcp_unit_names
  ) AS cu
    ON cu.gcp_unit = LOWER(c.usage_unit)
  LEFT JOIN (
-- include: gcp_unit_names
  ) AS pu
    ON pu.gcp_unit = LOWER(c.usage_pricing_unit)
) AS g
) AS f;

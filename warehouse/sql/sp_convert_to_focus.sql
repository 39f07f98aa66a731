-- procedure: sp_convert_to_focus(p_provider STRING, p_start_date DATE, p_end_date DATE, p_org_slug STRING, p_pipeline_id STRING, p_credential_id STRING, p_run_id STRING)
-- Rebuilds the org's FOCUS 1.3 rows (cost_data_standard_1_3) for one provider and date range
-- from the cost tables: genai_payg_costs (openai, anthropic, gemini, deepseek, ...) and
-- subscription_costs_daily (p_provider 'subscription'). p_provider 'all' rebuilds both.
-- Idempotent per (org, provider, date): the slice is deleted, then rebuilt from whatever the
-- cost tables hold now, for every credential. Lineage names this (converting) run.
--
-- Mapping notes (FOCUS 1.3):
-- * LLM rows: ChargeCategory Usage, ChargeFrequency Usage-Based, ServiceCategory
--   'AI and Machine Learning' / 'Generative AI'; one row per charge line (input, cached
--   input, cache writes, output, web search) so Consumed/PricingQuantity are tokens (or
--   requests) with one unit price each. BilledCost = EffectiveCost = the provider-reported
--   cost where there is one (x_cost_allocation: 'report' when the report names the charge
--   line, 'shared' when a total was shared by list cost), else our computed cost;
--   ContractedCost = the org's negotiated (override) cost; ListCost = the public list cost.
-- * The unpriced rule: a line with no public price (genai-prices doesn't know the model, or
--   has no rate for that token kind) has ListCost = ListUnitPrice = 0, and ContractedCost =
--   ContractedUnitPrice = 0 unless an override prices it. The provider-reported cost is
--   never copied into the list price: it is BilledCost/EffectiveCost (0 if none was
--   reported). x_price_status = 'unpriced' marks such rows; genai.payg_cost counts them
--   in its run's log. x_price_source names the price data of every priced row.
-- * Subscriptions: ChargeCategory Purchase, ChargeFrequency Recurring (never Usage-Based for
--   a Purchase). One row per day: EffectiveCost is the amortized day, BilledCost the cycle's
--   invoice on its first day (0 on the others); BillingPeriod is the billing cycle.
-- * JSON columns are stored as text, as the warehouse keeps JSON.

CREATE TABLE IF NOT EXISTS `{dataset}.genai_payg_costs` (
  usage_date DATE,
  provider STRING,
  provider_name STRING,
  model STRING,
  model_id STRING,
  project_or_workspace_id STRING,
  api_key_id STRING,
  service_tier STRING,
  context_window STRING,
  batch BOOL,
  charge_type STRING,
  sku_meter STRING,
  quantity INT64,
  unit STRING,
  requests INT64,
  list_unit_price FLOAT64,
  list_cost FLOAT64,
  effective_unit_price FLOAT64,
  effective_cost FLOAT64,
  provider_reported_cost FLOAT64,
  price_status STRING,
  price_source STRING,
  currency STRING,
  cost_allocation STRING,
  x_org_slug STRING NOT NULL,
  x_pipeline_id STRING NOT NULL,
  x_credential_id STRING NOT NULL,
  x_pipeline_run_date DATE NOT NULL,
  x_run_id STRING NOT NULL,
  x_ingested_at TIMESTAMP NOT NULL,
  x_ingestion_date DATE NOT NULL
);

CREATE TABLE IF NOT EXISTS `{dataset}.subscription_costs_daily` (
  cost_date DATE,
  subscription_id STRING,
  provider STRING,
  provider_name STRING,
  plan STRING,
  seats INT64,
  unit_price FLOAT64,
  billing_cycle STRING,
  currency STRING,
  period_start DATE,
  period_end DATE,
  period_days INT64,
  seat_day_price FLOAT64,
  daily_cost FLOAT64,
  billed_cost FLOAT64,
  service_category STRING,
  service_subcategory STRING,
  x_org_slug STRING NOT NULL,
  x_pipeline_id STRING NOT NULL,
  x_credential_id STRING NOT NULL,
  x_pipeline_run_date DATE NOT NULL,
  x_run_id STRING NOT NULL,
  x_ingested_at TIMESTAMP NOT NULL,
  x_ingestion_date DATE NOT NULL
);

-- include: focus_1_3_table

-- Source tables are created when missing, so a fresh org converts to an empty slice.
DELETE FROM `{dataset}.cost_data_standard_1_3`
WHERE x_org_slug = @p_org_slug
  AND x_pipeline_run_date BETWEEN @p_start_date AND @p_end_date
  AND x_source IN ('genai_payg', 'saas_subscription')
  AND (@p_provider = 'all' OR x_provider = @p_provider);

INSERT INTO `{dataset}.cost_data_standard_1_3` (
-- include: focus_1_3_columns
)
SELECT
  CAST(NULL AS STRING) AS AllocatedMethodDetails,
  CAST(NULL AS STRING) AS AllocatedMethodId,
  CAST(NULL AS STRING) AS AllocatedResourceId,
  CAST(NULL AS STRING) AS AllocatedResourceName,
  CAST(NULL AS STRING) AS AllocatedTags,
  CAST(NULL AS STRING) AS AvailabilityZone,
  c.billed AS BilledCost,
  CONCAT(c.provider, ':', c.x_credential_id) AS BillingAccountId,
  CONCAT(c.provider_name, ' (', c.x_credential_id, ')') AS BillingAccountName,
  'Organization' AS BillingAccountType,
  c.currency AS BillingCurrency,
  TIMESTAMP(DATE_ADD(DATE_TRUNC(c.usage_date, MONTH), INTERVAL 1 MONTH)) AS BillingPeriodEnd,
  TIMESTAMP(DATE_TRUNC(c.usage_date, MONTH)) AS BillingPeriodStart,
  CAST(NULL AS STRING) AS CapacityReservationId,
  CAST(NULL AS STRING) AS CapacityReservationStatus,
  'Usage' AS ChargeCategory,
  CAST(NULL AS STRING) AS ChargeClass,
  CONCAT(c.provider_name, ' ', IFNULL(c.model, 'unknown model'), ': ', LOWER(c.sku_meter), IF(c.batch, ' (batch)', '')) AS ChargeDescription,
  'Usage-Based' AS ChargeFrequency,
  TIMESTAMP(DATE_ADD(c.usage_date, INTERVAL 1 DAY)) AS ChargePeriodEnd,
  TIMESTAMP(c.usage_date) AS ChargePeriodStart,
  CAST(NULL AS STRING) AS CommitmentDiscountCategory,
  CAST(NULL AS STRING) AS CommitmentDiscountId,
  CAST(NULL AS STRING) AS CommitmentDiscountName,
  CAST(NULL AS FLOAT64) AS CommitmentDiscountQuantity,
  CAST(NULL AS STRING) AS CommitmentDiscountStatus,
  CAST(NULL AS STRING) AS CommitmentDiscountType,
  CAST(NULL AS STRING) AS CommitmentDiscountUnit,
  CAST(c.quantity AS FLOAT64) AS ConsumedQuantity,
  c.unit AS ConsumedUnit,
  CAST(NULL AS STRING) AS ContractApplied,
  c.contracted AS ContractedCost,
  c.contracted_unit AS ContractedUnitPrice,
  c.billed AS EffectiveCost,
  c.provider_name AS HostProviderName,
  CAST(NULL AS STRING) AS InvoiceId,
  c.provider_name AS InvoiceIssuerName,
  c.list AS ListCost,
  c.list_unit AS ListUnitPrice,
  'Standard' AS PricingCategory,
  c.currency AS PricingCurrency,
  c.contracted_unit AS PricingCurrencyContractedUnitPrice,
  c.billed AS PricingCurrencyEffectiveCost,
  c.list_unit AS PricingCurrencyListUnitPrice,
  CAST(c.quantity AS FLOAT64) AS PricingQuantity,
  c.unit AS PricingUnit,
  c.provider_name AS ProviderName,
  c.provider_name AS PublisherName,
  CAST(NULL AS STRING) AS RegionId,
  CAST(NULL AS STRING) AS RegionName,
  c.api_key_id AS ResourceId,
  c.api_key_id AS ResourceName,
  IF(c.api_key_id IS NULL, CAST(NULL AS STRING), 'API Key') AS ResourceType,
  'AI and Machine Learning' AS ServiceCategory,
  CONCAT(c.provider_name, ' API') AS ServiceName,
  c.provider_name AS ServiceProviderName,
  'Generative AI' AS ServiceSubcategory,
  CONCAT(c.provider, '/', IFNULL(c.model, 'unknown')) AS SkuId,
  c.sku_meter AS SkuMeter,
  CAST(NULL AS STRING) AS SkuPriceDetails,
  CONCAT(c.provider, '/', IFNULL(c.model, 'unknown'), '/', c.charge_type, IF(c.batch, '/batch', ''), IF(c.service_tier IS NULL, '', CONCAT('/', c.service_tier)), IF(c.context_window IS NULL, '', CONCAT('/', c.context_window))) AS SkuPriceId,
  c.project_or_workspace_id AS SubAccountId,
  c.project_or_workspace_id AS SubAccountName,
  IF(c.project_or_workspace_id IS NULL, CAST(NULL AS STRING), IF(c.provider = 'anthropic', 'Workspace', 'Project')) AS SubAccountType,
  CAST(NULL AS STRING) AS Tags,
  c.provider AS x_provider,
  'genai_payg' AS x_source,
  c.model AS x_model,
  c.charge_type AS x_charge_type,
  c.price_status AS x_price_status,
  c.provider_reported_cost AS x_provider_reported_cost,
  IF(c.price_status = 'unpriced', CAST(NULL AS STRING), c.price_source) AS x_price_source,
  c.cost_allocation AS x_cost_allocation,
  @p_org_slug AS x_org_slug,
  @p_pipeline_id AS x_pipeline_id,
  @p_credential_id AS x_credential_id,
  c.usage_date AS x_pipeline_run_date,
  @p_run_id AS x_run_id,
  CURRENT_TIMESTAMP() AS x_ingested_at,
  CURRENT_DATE() AS x_ingestion_date
FROM (
  SELECT
    *,
    COALESCE(list_cost, 0) AS list,
    COALESCE(list_unit_price, 0) AS list_unit,
    COALESCE(effective_cost, list_cost, 0) AS contracted,
    COALESCE(effective_unit_price, list_unit_price, 0) AS contracted_unit,
    COALESCE(provider_reported_cost, effective_cost, list_cost, 0) AS billed
  FROM `{dataset}.genai_payg_costs`
  WHERE x_org_slug = @p_org_slug
    AND usage_date BETWEEN @p_start_date AND @p_end_date
    AND (@p_provider = 'all' OR provider = @p_provider)
) AS c;

INSERT INTO `{dataset}.cost_data_standard_1_3` (
-- include: focus_1_3_columns
)
SELECT
  CAST(NULL AS STRING) AS AllocatedMethodDetails,
  CAST(NULL AS STRING) AS AllocatedMethodId,
  CAST(NULL AS STRING) AS AllocatedResourceId,
  CAST(NULL AS STRING) AS AllocatedResourceName,
  CAST(NULL AS STRING) AS AllocatedTags,
  CAST(NULL AS STRING) AS AvailabilityZone,
  s.billed_cost AS BilledCost,
  CONCAT(s.provider, ':', s.x_org_slug) AS BillingAccountId,
  CONCAT(s.provider_name, ' (', s.x_org_slug, ')') AS BillingAccountName,
  'Account' AS BillingAccountType,
  s.currency AS BillingCurrency,
  TIMESTAMP(s.period_end) AS BillingPeriodEnd,
  TIMESTAMP(s.period_start) AS BillingPeriodStart,
  CAST(NULL AS STRING) AS CapacityReservationId,
  CAST(NULL AS STRING) AS CapacityReservationStatus,
  'Purchase' AS ChargeCategory,
  CAST(NULL AS STRING) AS ChargeClass,
  CONCAT(s.provider_name, ' ', s.plan, ': ', CAST(s.seats AS STRING), ' seats, billed ', s.billing_cycle) AS ChargeDescription,
  'Recurring' AS ChargeFrequency,
  TIMESTAMP(DATE_ADD(s.cost_date, INTERVAL 1 DAY)) AS ChargePeriodEnd,
  TIMESTAMP(s.cost_date) AS ChargePeriodStart,
  CAST(NULL AS STRING) AS CommitmentDiscountCategory,
  CAST(NULL AS STRING) AS CommitmentDiscountId,
  CAST(NULL AS STRING) AS CommitmentDiscountName,
  CAST(NULL AS FLOAT64) AS CommitmentDiscountQuantity,
  CAST(NULL AS STRING) AS CommitmentDiscountStatus,
  CAST(NULL AS STRING) AS CommitmentDiscountType,
  CAST(NULL AS STRING) AS CommitmentDiscountUnit,
  CAST(NULL AS FLOAT64) AS ConsumedQuantity,
  CAST(NULL AS STRING) AS ConsumedUnit,
  CAST(NULL AS STRING) AS ContractApplied,
  s.daily_cost AS ContractedCost,
  s.seat_day_price AS ContractedUnitPrice,
  s.daily_cost AS EffectiveCost,
  s.provider_name AS HostProviderName,
  CAST(NULL AS STRING) AS InvoiceId,
  s.provider_name AS InvoiceIssuerName,
  s.daily_cost AS ListCost,
  s.seat_day_price AS ListUnitPrice,
  'Standard' AS PricingCategory,
  s.currency AS PricingCurrency,
  s.seat_day_price AS PricingCurrencyContractedUnitPrice,
  s.daily_cost AS PricingCurrencyEffectiveCost,
  s.seat_day_price AS PricingCurrencyListUnitPrice,
  CAST(s.seats AS FLOAT64) AS PricingQuantity,
  'Seat-Days' AS PricingUnit,
  s.provider_name AS ProviderName,
  s.provider_name AS PublisherName,
  CAST(NULL AS STRING) AS RegionId,
  CAST(NULL AS STRING) AS RegionName,
  s.subscription_id AS ResourceId,
  CONCAT(s.provider_name, ' ', s.plan) AS ResourceName,
  'Subscription' AS ResourceType,
  s.service_category AS ServiceCategory,
  CONCAT(s.provider_name, ' ', s.plan) AS ServiceName,
  s.provider_name AS ServiceProviderName,
  s.service_subcategory AS ServiceSubcategory,
  CONCAT(s.provider, '/', s.plan) AS SkuId,
  'Seats' AS SkuMeter,
  CAST(NULL AS STRING) AS SkuPriceDetails,
  CONCAT(s.provider, '/', s.plan, '/', s.billing_cycle) AS SkuPriceId,
  CAST(NULL AS STRING) AS SubAccountId,
  CAST(NULL AS STRING) AS SubAccountName,
  CAST(NULL AS STRING) AS SubAccountType,
  CAST(NULL AS STRING) AS Tags,
  'subscription' AS x_provider,
  'saas_subscription' AS x_source,
  CAST(NULL AS STRING) AS x_model,
  'subscription' AS x_charge_type,
  'subscription' AS x_price_status,
  CAST(NULL AS FLOAT64) AS x_provider_reported_cost,
  CAST(NULL AS STRING) AS x_price_source,
  CAST(NULL AS STRING) AS x_cost_allocation,
  @p_org_slug AS x_org_slug,
  @p_pipeline_id AS x_pipeline_id,
  @p_credential_id AS x_credential_id,
  s.cost_date AS x_pipeline_run_date,
  @p_run_id AS x_run_id,
  CURRENT_TIMESTAMP() AS x_ingested_at,
  CURRENT_DATE() AS x_ingestion_date
FROM `{dataset}.subscription_costs_daily` AS s
WHERE s.x_org_slug = @p_org_slug
  AND s.cost_date BETWEEN @p_start_date AND @p_end_date
  AND @p_provider IN ('all', 'subscription');

-- procedure: sp_focus_azure(p_start_date DATE, p_end_date DATE, p_org_slug STRING, p_pipeline_id STRING, p_credential_id STRING, p_run_id STRING)
-- Rebuilds the org's Azure rows of cost_data_standard_1_3 for [p_start_date, p_end_date] from
-- azure_focus_export_raw (Cost Management FocusCost exports, FOCUS 1.0 / 1.0r2 / 1.2-preview,
-- read by cloud.azure_cost_export). Idempotent per (org, provider, date): the slice is
-- deleted, then rebuilt from whatever the raw table holds now for every credential of the org.
--
-- Mapping notes (FOCUS 1.0/1.2-preview -> 1.3):
-- * Costs are Microsoft's own: BilledCost as invoiced, EffectiveCost amortized. Purchase,
--   Tax, Credit and Adjustment rows keep their ChargeCategory; other values become
--   'Adjustment' (x_charge_type keeps what Azure said).
-- * 1.3's HostProviderName / ServiceProviderName and the provider names default to
--   'Microsoft' where the file has no value.
-- * ServiceName is empty on EA Marketplace purchases (a gap Microsoft documents): it falls
--   back to PublisherName, then 'Azure Marketplace'.
-- * ServiceCategory / ServiceSubcategory keep Azure's value when FOCUS 1.3 allows it, else
--   'Other' / 'Other (<category>)' (1.0 exports have no subcategory at all).
-- * Commitment discounts pass through: reservations are Category 'Usage', Type
--   'Reservation'; savings plans Category 'Spend', Type 'Savings Plan' (derived from each
--   other when one is missing). Status is required on Usage rows with a commitment.
-- * FOCUS 1.0 PricingCategory values (On-Demand, Commitment-Based) map to 1.3's (Standard,
--   Committed).
-- * The SKU, price, quantity and pricing-currency rules FOCUS 1.3 conditions on the charge
--   (null on Tax rows, present on Usage and Purchase rows, ...) are applied by the shared
--   focus_1_3_conformed_select around this SELECT; Azure's own values win where it gave them.
-- * BillingAccountType defaults to 'Billing Account' (EA); MCA exports name 'Billing Profile'.
-- * Microsoft's x_ columns (x_SkuMeterCategory, x_ResourceGroupName, x_BilledCostInUsd,
--   x_PublisherType, ...) stay in the raw table's x_extensions; they are not FOCUS columns.

-- include: focus_1_3_table

-- The raw table is created when missing, so a fresh org converts to an empty slice.
CREATE TABLE IF NOT EXISTS `{dataset}.azure_focus_export_raw` (
-- include: focus_export_raw_columns
);

DELETE FROM `{dataset}.cost_data_standard_1_3`
WHERE x_org_slug = @p_org_slug
  AND x_provider = 'azure'
  AND x_pipeline_run_date BETWEEN @p_start_date AND @p_end_date;

INSERT INTO `{dataset}.cost_data_standard_1_3` (
-- include: focus_1_3_columns
)
-- include: focus_1_3_conformed_select
FROM (
SELECT
  r.allocated_method_details AS AllocatedMethodDetails,
  r.allocated_method_id AS AllocatedMethodId,
  r.allocated_resource_id AS AllocatedResourceId,
  r.allocated_resource_name AS AllocatedResourceName,
  r.allocated_tags AS AllocatedTags,
  r.availability_zone AS AvailabilityZone,
  r.billed AS BilledCost,
  COALESCE(r.billing_account_id, CONCAT('azure:', r.x_credential_id)) AS BillingAccountId,
  COALESCE(r.billing_account_name, r.billing_account_id, r.x_credential_id) AS BillingAccountName,
  COALESCE(r.billing_account_type, 'Billing Account') AS BillingAccountType,
  COALESCE(r.billing_currency, r.pricing_currency, 'USD') AS BillingCurrency,
  COALESCE(r.billing_period_end, TIMESTAMP(DATE_ADD(DATE_TRUNC(r.charge_date, MONTH), INTERVAL 1 MONTH))) AS BillingPeriodEnd,
  COALESCE(r.billing_period_start, TIMESTAMP(DATE_TRUNC(r.charge_date, MONTH))) AS BillingPeriodStart,
  r.capacity_reservation_id AS CapacityReservationId,
  IF(LOWER(r.capacity_reservation_status) = 'used', 'Used', IF(LOWER(r.capacity_reservation_status) = 'unused', 'Unused', CAST(NULL AS STRING))) AS CapacityReservationStatus,
  r.category AS ChargeCategory,
  IF(LOWER(r.charge_class) = 'correction', 'Correction', CAST(NULL AS STRING)) AS ChargeClass,
  COALESCE(r.charge_description, r.sku_meter, CONCAT(r.svc_name, ' ', LOWER(r.category))) AS ChargeDescription,
  IF(LOWER(r.charge_frequency) = 'one-time', 'One-Time',
  IF(LOWER(r.charge_frequency) = 'recurring', 'Recurring',
  IF(r.category = 'Purchase', 'One-Time',
  IF(LOWER(r.charge_frequency) = 'usage-based' OR r.category = 'Usage', 'Usage-Based',
    CAST(NULL AS STRING))))) AS ChargeFrequency,
  COALESCE(r.charge_period_end, TIMESTAMP(DATE_ADD(r.charge_date, INTERVAL 1 DAY))) AS ChargePeriodEnd,
  r.charge_period_start AS ChargePeriodStart,
  r.cd_category AS CommitmentDiscountCategory,
  r.commitment_discount_id AS CommitmentDiscountId,
  r.commitment_discount_name AS CommitmentDiscountName,
  r.commitment_discount_quantity AS CommitmentDiscountQuantity,
  IF(r.commitment_discount_id IS NULL, CAST(NULL AS STRING),
  IF(LOWER(r.commitment_discount_status) = 'used', 'Used',
  IF(LOWER(r.commitment_discount_status) = 'unused', 'Unused',
  IF(r.category = 'Usage', 'Used',
    CAST(NULL AS STRING))))) AS CommitmentDiscountStatus,
  IF(r.commitment_discount_id IS NULL, CAST(NULL AS STRING),
  IF(r.commitment_discount_type IS NOT NULL, r.commitment_discount_type,
  IF(r.cd_category = 'Spend', 'Savings Plan',
    'Reservation'))) AS CommitmentDiscountType,
  r.commitment_discount_unit AS CommitmentDiscountUnit,
  r.consumed_quantity AS ConsumedQuantity,
  r.consumed_unit AS ConsumedUnit,
  r.contract_applied AS ContractApplied,
  COALESCE(r.contracted_cost, r.billed) AS ContractedCost,
  r.contracted_unit_price AS ContractedUnitPrice,
  COALESCE(r.effective_cost, r.billed) AS EffectiveCost,
  COALESCE(r.host_provider_name, r.provider_name, 'Microsoft') AS HostProviderName,
  r.invoice_id AS InvoiceId,
  COALESCE(r.invoice_issuer_name, 'Microsoft') AS InvoiceIssuerName,
  COALESCE(r.list_cost, r.contracted_cost, r.billed) AS ListCost,
  r.list_unit_price AS ListUnitPrice,
  IF(LOWER(r.pricing_category) IN ('standard', 'on-demand'), 'Standard',
  IF(LOWER(r.pricing_category) = 'dynamic', 'Dynamic',
  IF(LOWER(r.pricing_category) IN ('committed', 'commitment-based'), 'Committed',
  IF(r.pricing_category IS NOT NULL, 'Other',
    CAST(NULL AS STRING))))) AS PricingCategory,
  r.pricing_currency AS PricingCurrency,
  r.pricing_currency_contracted_unit_price AS PricingCurrencyContractedUnitPrice,
  r.pricing_currency_effective_cost AS PricingCurrencyEffectiveCost,
  r.pricing_currency_list_unit_price AS PricingCurrencyListUnitPrice,
  r.pricing_quantity AS PricingQuantity,
  r.pricing_unit AS PricingUnit,
  COALESCE(r.provider_name, 'Microsoft') AS ProviderName,
  COALESCE(r.publisher_name, r.provider_name, 'Microsoft') AS PublisherName,
  r.region_id AS RegionId,
  r.region_name AS RegionName,
  r.resource_id AS ResourceId,
  r.resource_name AS ResourceName,
  r.resource_type AS ResourceType,
  r.svc_category AS ServiceCategory,
  r.svc_name AS ServiceName,
  COALESCE(r.service_provider_name, r.provider_name, 'Microsoft') AS ServiceProviderName,
  IF(
    CONCAT(r.svc_category, '|', r.service_subcategory) IN (
        'AI and Machine Learning|AI Platforms',
        'AI and Machine Learning|Bots',
        'AI and Machine Learning|Generative AI',
        'AI and Machine Learning|Machine Learning',
        'AI and Machine Learning|Natural Language Processing',
        'AI and Machine Learning|Other (AI and Machine Learning)',
        'Analytics|Analytics Platforms',
        'Analytics|Business Intelligence',
        'Analytics|Data Processing',
        'Analytics|Search',
        'Analytics|Streaming Analytics',
        'Analytics|Other (Analytics)',
        'Business Applications|Productivity and Collaboration',
        'Business Applications|Other (Business Applications)',
        'Compute|Containers',
        'Compute|End User Computing',
        'Compute|Quantum Compute',
        'Compute|Serverless Compute',
        'Compute|Virtual Machines',
        'Compute|Other (Compute)',
        'Databases|Caching',
        'Databases|Data Warehouses',
        'Databases|Ledger Databases',
        'Databases|NoSQL Databases',
        'Databases|Relational Databases',
        'Databases|Time Series Databases',
        'Databases|Other (Databases)',
        'Developer Tools|Developer Platforms',
        'Developer Tools|Continuous Integration and Deployment',
        'Developer Tools|Development Environments',
        'Developer Tools|Source Code Management',
        'Developer Tools|Quality Assurance',
        'Developer Tools|Other (Developer Tools)',
        'Identity|Identity and Access Management',
        'Identity|Other (Identity)',
        'Integration|API Management',
        'Integration|Messaging',
        'Integration|Workflow Orchestration',
        'Integration|Other (Integration)',
        'Internet of Things|IoT Analytics',
        'Internet of Things|IoT Platforms',
        'Internet of Things|Other (Internet of Things)',
        'Management and Governance|Architecture',
        'Management and Governance|Compliance',
        'Management and Governance|Cost Management',
        'Management and Governance|Data Governance',
        'Management and Governance|Disaster Recovery',
        'Management and Governance|Endpoint Management',
        'Management and Governance|Observability',
        'Management and Governance|Support',
        'Management and Governance|Other (Management and Governance)',
        'Media|Content Creation',
        'Media|Gaming',
        'Media|Media Streaming',
        'Media|Mixed Reality',
        'Media|Other (Media)',
        'Migration|Data Migration',
        'Migration|Resource Migration',
        'Migration|Other (Migration)',
        'Mobile|Other (Mobile)',
        'Multicloud|Multicloud Integration',
        'Multicloud|Other (Multicloud)',
        'Networking|Application Networking',
        'Networking|Content Delivery',
        'Networking|Network Connectivity',
        'Networking|Network Infrastructure',
        'Networking|Network Routing',
        'Networking|Network Security',
        'Networking|Other (Networking)',
        'Security|Secret Management',
        'Security|Security Posture Management',
        'Security|Threat Detection and Response',
        'Security|Other (Security)',
        'Storage|Backup Storage',
        'Storage|Block Storage',
        'Storage|File Storage',
        'Storage|Object Storage',
        'Storage|Storage Platforms',
        'Storage|Other (Storage)',
        'Web|Application Platforms',
        'Web|Other (Web)',
        'Other|Other (Other)'
    ),
    r.service_subcategory,
    CONCAT('Other (', r.svc_category, ')')
  ) AS ServiceSubcategory,
  r.sku_id AS SkuId,
  r.sku_meter AS SkuMeter,
  r.sku_price_details AS SkuPriceDetails,
  r.sku_price_id AS SkuPriceId,
  r.sub_account_id AS SubAccountId,
  r.sub_account_name AS SubAccountName,
  COALESCE(r.sub_account_type, IF(r.sub_account_id IS NULL, CAST(NULL AS STRING), 'Subscription')) AS SubAccountType,
  r.tags AS Tags,
  'azure' AS x_provider,
  'azure_focus_cost_export' AS x_source,
  CAST(NULL AS STRING) AS x_model,
  r.charge_category AS x_charge_type,
  'provider_reported' AS x_price_status,
  r.billed AS x_provider_reported_cost,
  CAST(NULL AS STRING) AS x_price_source,
  CAST(NULL AS STRING) AS x_cost_allocation,
  @p_org_slug AS x_org_slug,
  @p_pipeline_id AS x_pipeline_id,
  @p_credential_id AS x_credential_id,
  r.charge_date AS x_pipeline_run_date,
  @p_run_id AS x_run_id,
  CURRENT_TIMESTAMP() AS x_ingested_at,
  CURRENT_DATE() AS x_ingestion_date
FROM (
  SELECT
    *,
    COALESCE(billed_cost, 0) AS billed,
    IF(LOWER(charge_category) = 'usage', 'Usage',
    IF(LOWER(charge_category) = 'purchase', 'Purchase',
    IF(LOWER(charge_category) = 'tax', 'Tax',
    IF(LOWER(charge_category) = 'credit', 'Credit',
      'Adjustment')))) AS category,
    IF(service_name IS NOT NULL AND service_name <> '', service_name,
    IF(publisher_name IS NOT NULL AND publisher_name <> '', publisher_name,
      'Azure Marketplace')) AS svc_name,
    IF(
      service_category IN (
        'AI and Machine Learning',
        'Analytics',
        'Business Applications',
        'Compute',
        'Databases',
        'Developer Tools',
        'Identity',
        'Integration',
        'Internet of Things',
        'Management and Governance',
        'Media',
        'Migration',
        'Mobile',
        'Multicloud',
        'Networking',
        'Security',
        'Storage',
        'Web',
        'Other'
      ),
      service_category,
      'Other'
    ) AS svc_category,
    IF(commitment_discount_id IS NULL, CAST(NULL AS STRING),
    IF(LOWER(commitment_discount_category) = 'spend', 'Spend',
    IF(LOWER(commitment_discount_category) = 'usage', 'Usage',
    IF(LOWER(commitment_discount_type) LIKE '%savings%', 'Spend',
      'Usage')))) AS cd_category
  FROM `{dataset}.azure_focus_export_raw`
  WHERE x_org_slug = @p_org_slug
    AND charge_date BETWEEN @p_start_date AND @p_end_date
) AS r
) AS f;

-- procedure: sp_focus_aws(p_start_date DATE, p_end_date DATE, p_org_slug STRING, p_pipeline_id STRING, p_credential_id STRING, p_run_id STRING)
-- Rebuilds the org's AWS rows of cost_data_standard_1_3 (FOCUS 1.3) for a date range from
-- aws_focus_export_raw: the AWS Data Exports "FOCUS 1.2 with AWS columns" rows, every
-- credential of the org. Idempotent per (org, 'aws', charge date): the slice is deleted and
-- rebuilt from what the raw table holds now, which the extract step replaced with the
-- current manifest's files, so AWS restatements replace rather than add.
--
-- FOCUS 1.2 -> 1.3 is close to the identity. What this adds:
-- * 1.3's HostProviderName and ServiceProviderName come from ProviderName (filled by the
--   normalizer); they, InvoiceIssuerName, ProviderName and PublisherName fall back to
--   'Amazon Web Services' because AWS documents InvoiceIssuerName/PublisherName may be null.
-- * ServiceCategory keeps AWS's value when it is one of the 19 allowed (the list did not
--   change from 1.2 to 1.3), else 'Other'; ServiceSubcategory keeps AWS's value when it is
--   allowed under that category, else 'Other (<category>)'.
-- * PricingQuantity and PricingUnit are null on Tax rows (FOCUS: MUST be null there) and
--   otherwise as AWS delivers them (MAY be null on Credit/Adjustment rows).
-- * ListUnitPrice, ContractedUnitPrice, SkuId and SkuPriceId stay null where AWS leaves them
--   null (AWS's published conformance gaps; FOCUS makes them Conditional). The Mandatory
--   cost columns never stay null: ContractedCost/EffectiveCost/ListCost fall back to the
--   next cost AWS did fill, BilledCost to 0.
-- * Commitment discounts pass through as AWS fills them (Savings Plans: Category Spend,
--   Type 'Savings Plan'; Reserved Instances: Category Usage, Type 'Reserved Instance').
--   Credit and Tax rows are AWS's own ChargeCategory 'Credit' / 'Tax' rows, kept as rows.
-- * BillingAccountType defaults to 'Billing Account' and SubAccountType to 'Account' (only
--   where a SubAccountId exists).
-- The AWS extension columns (x_ServiceCode, x_UsageType, x_Operation, x_Discounts) stay in
-- aws_focus_export_raw.x_extensions.

-- The raw table is created when missing, so a fresh org converts to an empty slice.
CREATE TABLE IF NOT EXISTS `{dataset}.aws_focus_export_raw` (
-- include: focus_export_raw_columns
);

-- include: focus_1_3_table

DELETE FROM `{dataset}.cost_data_standard_1_3`
WHERE x_org_slug = @p_org_slug
  AND x_provider = 'aws'
  AND x_pipeline_run_date BETWEEN @p_start_date AND @p_end_date;

INSERT INTO `{dataset}.cost_data_standard_1_3` (
-- include: focus_1_3_columns
)
-- include: focus_1_3_conformed_select
FROM (
SELECT
  a.allocated_method_details AS AllocatedMethodDetails,
  a.allocated_method_id AS AllocatedMethodId,
  a.allocated_resource_id AS AllocatedResourceId,
  a.allocated_resource_name AS AllocatedResourceName,
  a.allocated_tags AS AllocatedTags,
  a.availability_zone AS AvailabilityZone,
  IFNULL(a.billed_cost, 0) AS BilledCost,
  a.billing_account_id AS BillingAccountId,
  COALESCE(a.billing_account_name, a.billing_account_id) AS BillingAccountName,
  IFNULL(a.billing_account_type, 'Billing Account') AS BillingAccountType,
  a.billing_currency AS BillingCurrency,
  COALESCE(a.billing_period_end, TIMESTAMP(DATE_ADD(DATE_TRUNC(a.charge_date, MONTH), INTERVAL 1 MONTH))) AS BillingPeriodEnd,
  COALESCE(a.billing_period_start, TIMESTAMP(DATE_TRUNC(a.charge_date, MONTH))) AS BillingPeriodStart,
  a.capacity_reservation_id AS CapacityReservationId,
  a.capacity_reservation_status AS CapacityReservationStatus,
  a.focus_charge_category AS ChargeCategory,
  IF(a.charge_class = 'Correction', 'Correction', CAST(NULL AS STRING)) AS ChargeClass,
  COALESCE(a.charge_description, CONCAT(IFNULL(a.service_name, 'AWS'), ' ', LOWER(a.focus_charge_category))) AS ChargeDescription,
  IF(a.charge_frequency IN ('One-Time', 'Recurring', 'Usage-Based'), a.charge_frequency, CAST(NULL AS STRING)) AS ChargeFrequency,
  COALESCE(a.charge_period_end, TIMESTAMP(DATE_ADD(a.charge_date, INTERVAL 1 DAY))) AS ChargePeriodEnd,
  a.charge_period_start AS ChargePeriodStart,
  a.commitment_discount_category AS CommitmentDiscountCategory,
  a.commitment_discount_id AS CommitmentDiscountId,
  a.commitment_discount_name AS CommitmentDiscountName,
  a.commitment_discount_quantity AS CommitmentDiscountQuantity,
  a.commitment_discount_status AS CommitmentDiscountStatus,
  a.commitment_discount_type AS CommitmentDiscountType,
  a.commitment_discount_unit AS CommitmentDiscountUnit,
  a.consumed_quantity AS ConsumedQuantity,
  a.consumed_unit AS ConsumedUnit,
  a.contract_applied AS ContractApplied,
  COALESCE(a.contracted_cost, a.billed_cost, 0) AS ContractedCost,
  a.contracted_unit_price AS ContractedUnitPrice,
  COALESCE(a.effective_cost, a.billed_cost, 0) AS EffectiveCost,
  COALESCE(a.host_provider_name, a.provider_name, 'Amazon Web Services') AS HostProviderName,
  a.invoice_id AS InvoiceId,
  IFNULL(a.invoice_issuer_name, 'Amazon Web Services') AS InvoiceIssuerName,
  COALESCE(a.list_cost, a.contracted_cost, a.billed_cost, 0) AS ListCost,
  a.list_unit_price AS ListUnitPrice,
  IF(a.pricing_category IS NULL OR a.pricing_category IN ('Standard', 'Dynamic', 'Committed', 'Other'), a.pricing_category, 'Other') AS PricingCategory,
  a.pricing_currency AS PricingCurrency,
  a.pricing_currency_contracted_unit_price AS PricingCurrencyContractedUnitPrice,
  a.pricing_currency_effective_cost AS PricingCurrencyEffectiveCost,
  a.pricing_currency_list_unit_price AS PricingCurrencyListUnitPrice,
  IF(a.focus_charge_category = 'Tax', CAST(NULL AS FLOAT64), a.pricing_quantity) AS PricingQuantity,
  IF(a.focus_charge_category = 'Tax', CAST(NULL AS STRING), a.pricing_unit) AS PricingUnit,
  IFNULL(a.provider_name, 'Amazon Web Services') AS ProviderName,
  COALESCE(a.publisher_name, a.provider_name, 'Amazon Web Services') AS PublisherName,
  a.region_id AS RegionId,
  a.region_name AS RegionName,
  a.resource_id AS ResourceId,
  a.resource_name AS ResourceName,
  a.resource_type AS ResourceType,
  a.focus_service_category AS ServiceCategory,
  IFNULL(a.service_name, 'Unknown AWS service') AS ServiceName,
  COALESCE(a.service_provider_name, a.provider_name, 'Amazon Web Services') AS ServiceProviderName,
  IF(
    CONCAT(a.focus_service_category, '/', a.service_subcategory) IN (
      'AI and Machine Learning/AI Platforms',
      'AI and Machine Learning/Bots',
      'AI and Machine Learning/Generative AI',
      'AI and Machine Learning/Machine Learning',
      'AI and Machine Learning/Natural Language Processing',
      'Analytics/Analytics Platforms',
      'Analytics/Business Intelligence',
      'Analytics/Data Processing',
      'Analytics/Search',
      'Analytics/Streaming Analytics',
      'Business Applications/Productivity and Collaboration',
      'Compute/Containers',
      'Compute/End User Computing',
      'Compute/Quantum Compute',
      'Compute/Serverless Compute',
      'Compute/Virtual Machines',
      'Databases/Caching',
      'Databases/Data Warehouses',
      'Databases/Ledger Databases',
      'Databases/NoSQL Databases',
      'Databases/Relational Databases',
      'Databases/Time Series Databases',
      'Developer Tools/Developer Platforms',
      'Developer Tools/Continuous Integration and Deployment',
      'Developer Tools/Development Environments',
      'Developer Tools/Source Code Management',
      'Developer Tools/Quality Assurance',
      'Identity/Identity and Access Management',
      'Integration/API Management',
      'Integration/Messaging',
      'Integration/Workflow Orchestration',
      'Internet of Things/IoT Analytics',
      'Internet of Things/IoT Platforms',
      'Management and Governance/Architecture',
      'Management and Governance/Compliance',
      'Management and Governance/Cost Management',
      'Management and Governance/Data Governance',
      'Management and Governance/Disaster Recovery',
      'Management and Governance/Endpoint Management',
      'Management and Governance/Observability',
      'Management and Governance/Support',
      'Media/Content Creation',
      'Media/Gaming',
      'Media/Media Streaming',
      'Media/Mixed Reality',
      'Migration/Data Migration',
      'Migration/Resource Migration',
      'Multicloud/Multicloud Integration',
      'Networking/Application Networking',
      'Networking/Content Delivery',
      'Networking/Network Connectivity',
      'Networking/Network Infrastructure',
      'Networking/Network Routing',
      'Networking/Network Security',
      'Security/Secret Management',
      'Security/Security Posture Management',
      'Security/Threat Detection and Response',
      'Storage/Backup Storage',
      'Storage/Block Storage',
      'Storage/File Storage',
      'Storage/Object Storage',
      'Storage/Storage Platforms',
      'Web/Application Platforms'
    ),
    a.service_subcategory,
    CONCAT('Other (', a.focus_service_category, ')')
  ) AS ServiceSubcategory,
  a.sku_id AS SkuId,
  a.sku_meter AS SkuMeter,
  a.sku_price_details AS SkuPriceDetails,
  a.sku_price_id AS SkuPriceId,
  a.sub_account_id AS SubAccountId,
  a.sub_account_name AS SubAccountName,
  IF(a.sub_account_id IS NULL, CAST(NULL AS STRING), IFNULL(a.sub_account_type, 'Account')) AS SubAccountType,
  a.tags AS Tags,
  'aws' AS x_provider,
  'aws_focus_1_2_export' AS x_source,
  CAST(NULL AS STRING) AS x_model,
  CAST(NULL AS STRING) AS x_charge_type,
  CAST(NULL AS STRING) AS x_price_status,
  a.billed_cost AS x_provider_reported_cost,
  CAST(NULL AS STRING) AS x_price_source,
  CAST(NULL AS STRING) AS x_cost_allocation,
  @p_org_slug AS x_org_slug,
  @p_pipeline_id AS x_pipeline_id,
  @p_credential_id AS x_credential_id,
  a.charge_date AS x_pipeline_run_date,
  @p_run_id AS x_run_id,
  CURRENT_TIMESTAMP() AS x_ingested_at,
  CURRENT_DATE() AS x_ingestion_date
FROM (
  SELECT
    r.*,
    IF(r.charge_category IN ('Usage', 'Purchase', 'Tax', 'Credit', 'Adjustment'), r.charge_category, 'Adjustment') AS focus_charge_category,
    IF(r.service_category IN (
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
    ), r.service_category, 'Other') AS focus_service_category
  FROM `{dataset}.aws_focus_export_raw` AS r
  WHERE r.x_org_slug = @p_org_slug
    AND r.charge_date BETWEEN @p_start_date AND @p_end_date
) AS a
) AS f;

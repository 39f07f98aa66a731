-- procedure: sp_focus_oci(p_start_date DATE, p_end_date DATE, p_org_slug STRING, p_pipeline_id STRING, p_credential_id STRING, p_run_id STRING)
-- Rebuilds the org's OCI rows of cost_data_standard_1_3 (FOCUS 1.3) for the charge dates
-- [p_start_date, p_end_date] from oci_focus_report_raw (the OCI FOCUS cost reports, loaded by
-- cloud.oci_cost_report; re-delivered line items already dropped there). Idempotent per
-- (org, 'oci', charge date): the slice is deleted, then rebuilt from every credential's rows.
--
-- Mapping notes (the reports are FOCUS 1.0 with some 1.0-preview names):
-- * Names: ProviderName, PublisherName, InvoiceIssuerName, ServiceProviderName and
--   HostProviderName come from the file, else 'Oracle' (1.3 split ProviderName in two).
-- * ChargeCategory: the five 1.3 values are kept; the preview's Adjustment/ChargeSubcategory
--   'Credit' becomes Credit. Tax, Credit and Adjustment rows are kept as rows (not netted), so
--   Sum(BilledCost) is the invoice total.
-- * Commitments: ChargeSubcategory (a preview column, kept in x_extensions) 'Used Commitment'
--   / 'Unused Commitment' sets CommitmentDiscountStatus when CommitmentDiscountId is set and
--   the file has no status; a Usage row against a commitment is otherwise 'Used'. OCI's
--   commitments (Universal Credits) are spend commitments, so the category defaults to Spend.
-- * ServiceCategory: the file's value when it is a 1.3 value (any case; 'Database' and
--   'Network' aliases), else from the service name, else 'Other'. ServiceSubcategory from the
--   service name within that category, else 'Other (<category>)'.
-- * SubAccount is the compartment: SubAccountId/Name from the file, else oci_CompartmentId/
--   oci_CompartmentName; SubAccountType 'Compartment' when set.
-- * PricingQuantity/PricingUnit are the file's (else the usage quantity and unit); the shared
--   focus_1_3_conformed_select then applies FOCUS's pricing rules (nothing priced on Tax
--   rows or rows without a SkuPriceId, defaults on Usage/Purchase rows). A missing
--   ContractedCost is the BilledCost (the ListCost for a commitment-covered row, whose
--   BilledCost is 0).

-- The raw table is created when missing, so a fresh org converts to an empty slice.
CREATE TABLE IF NOT EXISTS `{dataset}.oci_focus_report_raw` (
-- include: focus_export_raw_columns
);

-- include: focus_1_3_table

DELETE FROM `{dataset}.cost_data_standard_1_3`
WHERE x_org_slug = @p_org_slug
  AND x_provider = 'oci'
  AND x_pipeline_run_date BETWEEN @p_start_date AND @p_end_date;

INSERT INTO `{dataset}.cost_data_standard_1_3` (
-- include: focus_1_3_columns
)
-- include: focus_1_3_conformed_select
FROM (
SELECT
  c.allocated_method_details AS AllocatedMethodDetails,
  c.allocated_method_id AS AllocatedMethodId,
  c.allocated_resource_id AS AllocatedResourceId,
  c.allocated_resource_name AS AllocatedResourceName,
  c.allocated_tags AS AllocatedTags,
  c.availability_zone AS AvailabilityZone,
  IFNULL(c.billed_cost, 0) AS BilledCost,
  IFNULL(c.billing_account_id, CONCAT('oci:', c.x_credential_id)) AS BillingAccountId,
  COALESCE(c.billing_account_name, c.billing_account_id, CONCAT('OCI (', c.x_credential_id, ')')) AS BillingAccountName,
  IFNULL(c.billing_account_type, 'Tenancy') AS BillingAccountType,
  IFNULL(c.billing_currency, 'USD') AS BillingCurrency,
  IFNULL(c.billing_period_end, TIMESTAMP(DATE_ADD(DATE_TRUNC(c.charge_date, MONTH), INTERVAL 1 MONTH))) AS BillingPeriodEnd,
  IFNULL(c.billing_period_start, TIMESTAMP(DATE_TRUNC(c.charge_date, MONTH))) AS BillingPeriodStart,
  c.capacity_reservation_id AS CapacityReservationId,
  c.capacity_reservation_status AS CapacityReservationStatus,
  c.category AS ChargeCategory,
  IF(LOWER(c.charge_class) = 'correction', 'Correction', CAST(NULL AS STRING)) AS ChargeClass,
  COALESCE(c.charge_description, c.sku_meter, c.service_name, c.category) AS ChargeDescription,
  IF(LOWER(c.charge_frequency) = 'one-time', 'One-Time',
  IF(LOWER(c.charge_frequency) = 'recurring', 'Recurring',
  IF(LOWER(c.charge_frequency) = 'usage-based' AND c.category != 'Purchase', 'Usage-Based',
  IF(c.category = 'Usage', 'Usage-Based',
    'One-Time')))) AS ChargeFrequency,
  IFNULL(c.charge_period_end, TIMESTAMP(DATE_ADD(c.charge_date, INTERVAL 1 DAY))) AS ChargePeriodEnd,
  c.charge_period_start AS ChargePeriodStart,
  IF(c.commitment_discount_id IS NULL, CAST(NULL AS STRING),
    IF(LOWER(c.commitment_discount_category) = 'usage', 'Usage', 'Spend')) AS CommitmentDiscountCategory,
  c.commitment_discount_id AS CommitmentDiscountId,
  c.commitment_discount_name AS CommitmentDiscountName,
  c.commitment_discount_quantity AS CommitmentDiscountQuantity,
  IF(c.commitment_discount_id IS NULL, CAST(NULL AS STRING),
  IF(LOWER(c.commitment_discount_status) = 'used', 'Used',
  IF(LOWER(c.commitment_discount_status) = 'unused', 'Unused',
  IF(LOWER(c.charge_subcategory) = 'used commitment', 'Used',
  IF(LOWER(c.charge_subcategory) = 'unused commitment', 'Unused',
  IF(c.category = 'Usage', 'Used',
    CAST(NULL AS STRING))))))) AS CommitmentDiscountStatus,
  c.commitment_discount_type AS CommitmentDiscountType,
  c.commitment_discount_unit AS CommitmentDiscountUnit,
  c.consumed_quantity AS ConsumedQuantity,
  c.consumed_unit AS ConsumedUnit,
  c.contract_applied AS ContractApplied,
  COALESCE(c.contracted_cost, IF(c.commitment_discount_id IS NULL, c.billed_cost, c.list_cost), c.billed_cost, 0) AS ContractedCost,
  c.contracted_unit_price AS ContractedUnitPrice,
  COALESCE(c.effective_cost, c.billed_cost, 0) AS EffectiveCost,
  IFNULL(c.host_provider_name, 'Oracle') AS HostProviderName,
  c.invoice_id AS InvoiceId,
  IFNULL(c.invoice_issuer_name, 'Oracle') AS InvoiceIssuerName,
  COALESCE(c.list_cost, c.billed_cost, 0) AS ListCost,
  c.list_unit_price AS ListUnitPrice,
  IF(LOWER(c.pricing_category) IN ('standard', 'on-demand'), 'Standard',
  IF(LOWER(c.pricing_category) IN ('committed', 'commitment-based'), 'Committed',
  IF(LOWER(c.pricing_category) = 'dynamic', 'Dynamic',
  IF(LOWER(c.pricing_category) = 'other', 'Other',
  IF(c.category = 'Usage' AND c.commitment_discount_id IS NOT NULL, 'Committed',
  IF(c.category IN ('Usage', 'Purchase'), 'Standard',
    CAST(NULL AS STRING))))))) AS PricingCategory,
  c.pricing_currency AS PricingCurrency,
  c.pricing_currency_contracted_unit_price AS PricingCurrencyContractedUnitPrice,
  c.pricing_currency_effective_cost AS PricingCurrencyEffectiveCost,
  c.pricing_currency_list_unit_price AS PricingCurrencyListUnitPrice,
  COALESCE(c.pricing_quantity, c.consumed_quantity) AS PricingQuantity,
  COALESCE(c.pricing_unit, c.consumed_unit) AS PricingUnit,
  IFNULL(c.provider_name, 'Oracle') AS ProviderName,
  COALESCE(c.publisher_name, c.provider_name, 'Oracle') AS PublisherName,
  c.region_id AS RegionId,
  c.region_name AS RegionName,
  c.resource_id AS ResourceId,
  c.resource_name AS ResourceName,
  c.resource_type AS ResourceType,
  c.service AS ServiceCategory,
  COALESCE(c.service_name, c.category) AS ServiceName,
  IFNULL(c.service_provider_name, 'Oracle') AS ServiceProviderName,
  IF(
    -- A 1.2+ file's own subcategory, when it is a 1.3 value under the category we chose.
    CONCAT(c.service, '|', c.service_subcategory) IN (
      'AI and Machine Learning|AI Platforms', 'AI and Machine Learning|Bots',
      'AI and Machine Learning|Generative AI', 'AI and Machine Learning|Machine Learning',
      'AI and Machine Learning|Natural Language Processing', 'Analytics|Analytics Platforms',
      'Analytics|Business Intelligence', 'Analytics|Data Processing', 'Analytics|Search',
      'Analytics|Streaming Analytics', 'Business Applications|Productivity and Collaboration',
      'Compute|Containers', 'Compute|End User Computing', 'Compute|Quantum Compute',
      'Compute|Serverless Compute', 'Compute|Virtual Machines', 'Databases|Caching',
      'Databases|Data Warehouses', 'Databases|Ledger Databases', 'Databases|NoSQL Databases',
      'Databases|Relational Databases', 'Databases|Time Series Databases',
      'Developer Tools|Developer Platforms',
      'Developer Tools|Continuous Integration and Deployment',
      'Developer Tools|Development Environments', 'Developer Tools|Source Code Management',
      'Developer Tools|Quality Assurance', 'Identity|Identity and Access Management',
      'Integration|API Management', 'Integration|Messaging', 'Integration|Workflow Orchestration',
      'Internet of Things|IoT Analytics', 'Internet of Things|IoT Platforms',
      'Management and Governance|Architecture', 'Management and Governance|Compliance',
      'Management and Governance|Cost Management', 'Management and Governance|Data Governance',
      'Management and Governance|Disaster Recovery',
      'Management and Governance|Endpoint Management', 'Management and Governance|Observability',
      'Management and Governance|Support', 'Media|Content Creation', 'Media|Gaming',
      'Media|Media Streaming', 'Media|Mixed Reality', 'Migration|Data Migration',
      'Migration|Resource Migration', 'Multicloud|Multicloud Integration',
      'Networking|Application Networking', 'Networking|Content Delivery',
      'Networking|Network Connectivity', 'Networking|Network Infrastructure',
      'Networking|Network Routing', 'Networking|Network Security', 'Security|Secret Management',
      'Security|Security Posture Management', 'Security|Threat Detection and Response',
      'Storage|Backup Storage', 'Storage|Block Storage', 'Storage|File Storage',
      'Storage|Object Storage', 'Storage|Storage Platforms', 'Web|Application Platforms'
    ),
    c.service_subcategory,
    IF(c.service_subcategory = CONCAT('Other (', c.service, ')'), c.service_subcategory,
    IF(c.service = 'Compute' AND (c.name_key LIKE '%container%' OR c.name_key LIKE '%kubernetes%'), 'Containers',
    IF(c.service = 'Compute' AND c.name_key LIKE '%function%', 'Serverless Compute',
    IF(c.service = 'Compute' AND c.name_key LIKE '%compute%', 'Virtual Machines',
    IF(c.service = 'Storage' AND c.name_key LIKE '%block%', 'Block Storage',
    IF(c.service = 'Storage' AND c.name_key LIKE '%object%', 'Object Storage',
    IF(c.service = 'Storage' AND c.name_key LIKE '%file%', 'File Storage',
    IF(c.service = 'Storage' AND c.name_key LIKE '%backup%', 'Backup Storage',
    IF(c.service = 'Databases' AND c.name_key LIKE '%nosql%', 'NoSQL Databases',
    IF(c.service = 'Databases' AND c.name_key LIKE '%warehouse%', 'Data Warehouses',
    IF(c.service = 'Databases' AND (c.name_key LIKE '%database%' OR c.name_key LIKE '%mysql%' OR c.name_key LIKE '%postgres%'), 'Relational Databases',
    IF(c.service = 'AI and Machine Learning' AND c.name_key LIKE '%generative%', 'Generative AI',
    IF(c.service = 'Networking' AND c.name_key LIKE '%load%balanc%', 'Application Networking',
    IF(c.service = 'Networking' AND (c.name_key LIKE '%fastconnect%' OR c.name_key LIKE '%vpn%'), 'Network Connectivity',
    IF(c.service = 'Networking' AND c.name_key LIKE '%dns%', 'Network Routing',
      CONCAT('Other (', c.service, ')'))))))))))))))))
  ) AS ServiceSubcategory,
  c.sku_id AS SkuId,
  c.sku_meter AS SkuMeter,
  c.sku_price_details AS SkuPriceDetails,
  c.sku_price_id AS SkuPriceId,
  c.sub_account AS SubAccountId,
  COALESCE(c.sub_account_name, c.compartment_name, c.sub_account) AS SubAccountName,
  IF(c.sub_account IS NULL, CAST(NULL AS STRING), IFNULL(c.sub_account_type, 'Compartment')) AS SubAccountType,
  c.tags AS Tags,
  'oci' AS x_provider,
  'oci_focus_report' AS x_source,
  CAST(NULL AS STRING) AS x_model,
  COALESCE(c.charge_subcategory, c.charge_category) AS x_charge_type,
  'provider_reported' AS x_price_status,
  c.billed_cost AS x_provider_reported_cost,
  CAST(NULL AS STRING) AS x_price_source,
  CAST(NULL AS STRING) AS x_cost_allocation,
  @p_org_slug AS x_org_slug,
  @p_pipeline_id AS x_pipeline_id,
  @p_credential_id AS x_credential_id,
  c.charge_date AS x_pipeline_run_date,
  @p_run_id AS x_run_id,
  CURRENT_TIMESTAMP() AS x_ingested_at,
  CURRENT_DATE() AS x_ingestion_date
FROM (
  SELECT
    b.*,
    IF(LOWER(b.charge_category) = 'adjustment' AND LOWER(IFNULL(b.charge_subcategory, '')) = 'credit', 'Credit',
    IF(LOWER(b.charge_category) = 'usage', 'Usage',
    IF(LOWER(b.charge_category) = 'purchase', 'Purchase',
    IF(LOWER(b.charge_category) = 'tax', 'Tax',
    IF(LOWER(b.charge_category) = 'credit', 'Credit',
    IF(b.charge_category IS NULL, 'Usage',
      'Adjustment')))))) AS category,
    IF(LOWER(b.service_category) IN ('ai and machine learning', 'analytics', 'business applications', 'compute', 'databases', 'developer tools', 'multicloud', 'identity', 'integration', 'internet of things', 'management and governance', 'media', 'migration', 'mobile', 'networking', 'security', 'storage', 'web', 'other'),
      IF(LOWER(b.service_category) = 'ai and machine learning', 'AI and Machine Learning',
      IF(LOWER(b.service_category) = 'business applications', 'Business Applications',
      IF(LOWER(b.service_category) = 'developer tools', 'Developer Tools',
      IF(LOWER(b.service_category) = 'internet of things', 'Internet of Things',
      IF(LOWER(b.service_category) = 'management and governance', 'Management and Governance',
        CONCAT(UPPER(SUBSTR(b.service_category, 1, 1)), LOWER(SUBSTR(b.service_category, 2)))))))),
    IF(LOWER(b.service_category) IN ('database', 'db'), 'Databases',
    IF(LOWER(b.service_category) IN ('network', 'networking services'), 'Networking',
    IF(b.name_key LIKE '%generative%' OR b.name_key LIKE '% ai %' OR b.name_key LIKE '%machine learning%' OR b.name_key LIKE '%data science%', 'AI and Machine Learning',
    IF(b.name_key LIKE '%database%' OR b.name_key LIKE '%mysql%' OR b.name_key LIKE '%nosql%' OR b.name_key LIKE '%postgres%', 'Databases',
    IF(b.name_key LIKE '%storage%', 'Storage',
    IF(b.name_key LIKE '%compute%' OR b.name_key LIKE '%container%' OR b.name_key LIKE '%kubernetes%' OR b.name_key LIKE '%function%', 'Compute',
    IF(b.name_key LIKE '%network%' OR b.name_key LIKE '%load%balanc%' OR b.name_key LIKE '%fastconnect%' OR b.name_key LIKE '%vpn%' OR b.name_key LIKE '%dns%', 'Networking',
    IF(b.name_key LIKE '%monitor%' OR b.name_key LIKE '%logging%', 'Management and Governance',
      'Other'))))))))) AS service
  FROM (
    SELECT
      r.*,
      JSON_VALUE(r.x_extensions, '$.ChargeSubcategory') AS charge_subcategory,
      JSON_VALUE(r.x_extensions, '$.oci_CompartmentName') AS compartment_name,
      COALESCE(r.sub_account_id, JSON_VALUE(r.x_extensions, '$.oci_CompartmentId')) AS sub_account,
      -- Service names arrive as 'COMPUTE', 'BLOCK_STORAGE' or 'Object Storage': match on one form.
      CONCAT(' ', LOWER(REPLACE(IFNULL(r.service_name, ''), '_', ' ')), ' ') AS name_key
    FROM `{dataset}.oci_focus_report_raw` AS r
    WHERE r.x_org_slug = @p_org_slug
      AND r.charge_date BETWEEN @p_start_date AND @p_end_date
  ) AS b
) AS c
) AS f;

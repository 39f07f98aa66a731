-- procedure: sp_demo_daily_cost(p_start_date DATE, p_end_date DATE, p_org_slug STRING, p_pipeline_id STRING, p_credential_id STRING, p_run_id STRING)
-- Rebuilds demo_daily_cost for one lineage key over [p_start_date, p_end_date]: running it
-- twice for the same key gives the same rows. Both sources are read for this org only.

CREATE TABLE IF NOT EXISTS `{dataset}.demo_daily_cost` (
  usage_date DATE,
  provider STRING,
  model STRING,
  input_tokens INT64,
  output_tokens INT64,
  requests INT64,
  cost_usd FLOAT64,
  x_org_slug STRING NOT NULL,
  x_pipeline_id STRING NOT NULL,
  x_credential_id STRING NOT NULL,
  x_pipeline_run_date DATE NOT NULL,
  x_run_id STRING NOT NULL,
  x_ingested_at TIMESTAMP NOT NULL,
  x_ingestion_date DATE NOT NULL
);

DELETE FROM `{dataset}.demo_daily_cost`
WHERE x_org_slug = @p_org_slug
  AND x_pipeline_id = @p_pipeline_id
  AND x_credential_id = @p_credential_id
  AND x_pipeline_run_date BETWEEN @p_start_date AND @p_end_date;

-- Usage is summed per day, provider and model so several raw rows for one day give one cost
-- row. A price list loaded more than once keeps only its latest row per model, so the join
-- can never multiply usage rows. Usage without a price has no cost row.
INSERT INTO `{dataset}.demo_daily_cost` (
  usage_date, provider, model, input_tokens, output_tokens, requests, cost_usd,
  x_org_slug, x_pipeline_id, x_credential_id, x_pipeline_run_date, x_run_id,
  x_ingested_at, x_ingestion_date
)
SELECT
  u.usage_date,
  u.provider,
  u.model,
  u.input_tokens,
  u.output_tokens,
  u.requests,
  (u.input_tokens * p.input_per_mtok + u.output_tokens * p.output_per_mtok) / 1000000.0,
  @p_org_slug,
  @p_pipeline_id,
  @p_credential_id,
  u.usage_date,
  @p_run_id,
  CURRENT_TIMESTAMP(),
  CURRENT_DATE()
FROM (
  SELECT
    usage_date,
    provider,
    model,
    SUM(input_tokens) AS input_tokens,
    SUM(output_tokens) AS output_tokens,
    SUM(requests) AS requests
  FROM `{dataset}.demo_usage_raw`
  WHERE x_org_slug = @p_org_slug
    AND usage_date BETWEEN @p_start_date AND @p_end_date
  GROUP BY usage_date, provider, model
) AS u
JOIN (
  SELECT provider, model, input_per_mtok, output_per_mtok
  FROM `{dataset}.demo_prices`
  WHERE x_org_slug = @p_org_slug
  QUALIFY ROW_NUMBER() OVER (PARTITION BY provider, model ORDER BY x_ingested_at DESC) = 1
) AS p
  ON p.provider = u.provider AND p.model = u.model;

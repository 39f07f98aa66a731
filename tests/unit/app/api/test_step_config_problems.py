"""Broken step configs, one per row, across every processor: `pipeline-ops validate` exits
non-zero and API admission answers 422, each naming the file, the step and the key, and no
run is recorded."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from app.cli import main
from pipeline.bootstrap import Services
from pipeline.settings import Settings
from processors.config_schema import CONFIG_SCHEMAS
from processors.registry import REGISTRY
from tests.support.api import assert_nothing_recorded, assert_problem
from tests.support.doubles import RecordingDispatcher
from tests.support.records import count_runs

# (case, ps_type, config as YAML flow, the key named, a part of the message)
CASES = [
    ("typo_key", "generic.file_extract", "{pth: a.csv, destination_table: t}", "config.pth",
     "unknown key (known: columns, date_column, destination_table, format, path)"),
    ("missing_path", "generic.file_extract", "{destination_table: t}", "config.path",
     "Missing data for required field"),
    ("bad_format", "generic.file_extract", "{path: a.csv, destination_table: t, format: xlsx}",
     "config.format", "Must be one of: csv, jsonl, ndjson"),
    ("timeout_text", "generic.http_extract",
     '{url: "https://example.com/x", destination_table: t, timeout_seconds: "30"}',
     "config.timeout_seconds", "Not a valid number"),
    ("no_procedure", "generic.procedure_executor", "{procedure: sp_nope}", "config.procedure",
     "no procedure 'sp_nope' (no warehouse/sql/sp_nope.sql"),
    ("args_list", "generic.procedure_executor", "{procedure: sp_convert_to_focus, args: [1]}",
     "config.args", "Not a valid mapping type"),
    ("sleep_text", "generic.noop", '{sleep_seconds: "5"}', "config.sleep_seconds",
     "Not a valid number"),
    ("no_provider", "genai.payg_usage", "{source: api}", "config.provider",
     "Missing data for required field"),
    ("bad_endpoint", "genai.payg_usage", "{provider: openai, endpoints: [completion]}",
     "config.endpoints[0]", "Must be one of: completions, embeddings, moderations"),
    ("timeout_float", "genai.payg_usage", "{provider: openai, request_timeout_seconds: 1.5}",
     "config.request_timeout_seconds", "Not a valid integer"),
    ("discount_range", "genai.payg_cost", "{batch_discount: 2}", "config.batch_discount",
     "greater than or equal to 0 and less than or equal to 1"),
    ("template_in_table", "genai.payg_cost", '{source_table: "{org_slug}_usage"}',
     "config.source_table", "does not accept templates"),
    ("categories_text", "subscription.amortize", "{service_categories: {slack: Business}}",
     "config.service_categories.slack.value", "Not a valid list"),
    ("partition_filter", "cloud.gcp_billing_export", "{partition_filter: daily}",
     "config.partition_filter", "Must be one of: partitiontime, usage_start_time"),
    ("margin_days", "cloud.gcp_billing_export", "{margin_days: 90}", "config.margin_days",
     "greater than or equal to 0 and less than or equal to 60"),
    ("currency_case", "cloud.gcp_sku_prices", "{currency: usd}", "config.currency",
     "a currency code like USD"),
    ("prefix_typo", "cloud.aws_data_export", "{bucket: b, prefx: cur}", "config.prefx",
     "unknown key (known: bucket, destination_table, export_name, prefix)"),
    ("empty_export", "cloud.aws_data_export", '{export_name: ""}', "config.export_name",
     "Shorter than minimum length 1"),
    ("table_name", "cloud.azure_cost_export", '{destination_table: "Raw-Rows"}',
     "config.destination_table", "must match ^[a-z0-9_]+$"),
    ("lookahead_bool", "cloud.oci_cost_report", "{lookahead_days: true}",
     "config.lookahead_days", "Not a valid integer"),
]  # fmt: skip


def pipeline_text(case: str, ps_type: str, config: str) -> str:
    return (
        f"pipeline_id: bad_{case}\nname: broken {case}\nprovider: test\ndomain: bad\n"
        f"steps:\n  - step_id: broken_step\n    ps_type: {ps_type}\n    config: {config}\n"
    )


def test_the_cases_cover_every_shipped_processor() -> None:
    assert set(CONFIG_SCHEMAS) == set(REGISTRY)
    assert {c[1] for c in CASES} == set(REGISTRY)
    assert len(CASES) >= 15


@pytest.mark.parametrize(("case", "ps_type", "config", "key", "message"), CASES)
def test_validate_and_admission_refuse_a_broken_step_config(
    case: str,
    ps_type: str,
    config: str,
    key: str,
    message: str,
    client: FlaskClient,
    auth: dict[str, str],
    settings: Settings,
    services: Services,
    dispatcher: RecordingDispatcher,
) -> None:
    path = settings.configs_dir / "test" / "bad" / f"{case}.yml"
    path.write_text(pipeline_text(case, ps_type, config))

    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code != 0, result.output
    assert f"{path}: broken_step: {key}: " in result.output
    assert message in result.output

    response = client.post(f"/pipelines/run/acme/test/bad/{case}", json={}, headers=auth)
    problem = assert_problem(response, 422, "invalid_config")
    assert problem["file"] == f"test/bad/{case}.yml"
    assert problem["detail"].startswith(f"test/bad/{case}.yml: the pipeline configuration has")
    errors = [e for e in problem["errors"] if e["message"].startswith(f"{key}: ")]
    assert errors and errors[0]["step"] == "broken_step", problem
    assert message in errors[0]["message"]
    assert_nothing_recorded(services, dispatcher)
    assert count_runs(services.store) == 0

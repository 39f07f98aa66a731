"""One org, GenAI and cloud sources, one FOCUS table: through the API and a real worker.

AWS's FOCUS export sits in moto's S3 (server mode) and OpenAI's usage on a local server
speaking the Admin API; both credentials are stored in the vault. After both pipelines and
the GenAI consolidate run, cost_data_standard_1_3 holds both providers, consolidate has left
the AWS rows alone, and the README's spend-by-provider-and-service query adds up.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.integration.conftest import Stack
from tests.integration.test_cloud_aws import ROWS, Export, export  # noqa: F401 - fixture
from tests.integration.test_genai_e2e import SECRET as OPENAI_SECRET
from tests.integration.test_genai_e2e import api, client  # noqa: F401 - fixtures
from tests.support.cloud import money
from tests.support.moto_server import moto_aws  # noqa: F401 - fixture
from tests.support.provider_api import ProviderAPIServer, serve_openai
from warehouse.duckdb import DuckDBWarehouse

ORG = "multi_source"
# The README's query, word for word apart from the dataset.
README_QUERY = """
SELECT ProviderName, ServiceName, ROUND(SUM(BilledCost), 2) AS billed
FROM `multi_source_dev.cost_data_standard_1_3`
WHERE ChargePeriodStart >= TIMESTAMP '2026-01-01'
GROUP BY 1, 2 ORDER BY billed DESC
"""


def run_ok(stack: Stack, web, path: str, body: dict, key: str) -> str:  # type: ignore[no-untyped-def]
    resp = web.post(f"/pipelines/run/{ORG}/{path}", json=body, headers={"X-API-Key": key})
    assert resp.status_code == 202, resp.get_json()
    run = stack.wait(resp.get_json()["run_id"])
    assert run.status == "completed", run.error_message
    return str(run.run_id)


def test_genai_and_aws_land_in_one_focus_table(
    sqlite_stack: Stack,
    client,  # type: ignore[no-untyped-def]  # noqa: F811
    api: ProviderAPIServer,  # noqa: F811
    export: Export,  # noqa: F811
) -> None:
    stack = sqlite_stack
    key = stack.services.orgs.create(ORG)
    credentials = stack.services.credentials
    credentials.add(
        ORG, "openai", "OpenAI admin", {"admin_key": OPENAI_SECRET, "base_url": api.url},
        credential_id="openai_admin",
    )  # fmt: skip
    aws_secret = export.credential()
    credentials.add(ORG, "aws", "AWS FOCUS export", aws_secret, credential_id="aws_export")
    serve_openai(api, [date(2026, 10, 5), date(2026, 10, 6)])

    aws_run = run_ok(
        stack, client, "aws/cost/billing",
        {"start_date": "2026-10-01", "end_date": "2026-10-31", "credential_id": "aws_export"}, key,
    )  # fmt: skip
    run_ok(
        stack, client, "genai/payg/openai",
        {"start_date": "2026-10-05", "end_date": "2026-10-06", "credential_id": "openai_admin"},
        key,
    )  # fmt: skip
    # Consolidate rebuilds the GenAI rows of the whole month; the cloud rows are not its own.
    run_ok(
        stack, client, "genai/unified/consolidate",
        {"start_date": "2026-10-01", "end_date": "2026-10-31"}, key,
    )  # fmt: skip

    warehouse = DuckDBWarehouse(stack.settings.warehouse_url.split("///", 1)[1])
    rows = warehouse.query(
        "SELECT x_provider, x_run_id, ProviderName, ServiceName, BilledCost "
        f"FROM `{ORG}_dev.cost_data_standard_1_3`"
    ).to_pylist()
    assert {r["x_provider"] for r in rows} == {"openai", "aws"}
    aws_rows = [r for r in rows if r["x_provider"] == "aws"]
    assert {r["x_run_id"] for r in aws_rows} == {aws_run}
    assert money(sum(Decimal(str(r["BilledCost"])) for r in aws_rows)) == money(
        sum(r["BilledCost"] for r in ROWS)
    )

    by_service = warehouse.query(README_QUERY).to_pylist()
    expected: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        group = (r["ProviderName"], r["ServiceName"])
        expected[group] = expected.get(group, Decimal(0)) + Decimal(str(r["BilledCost"]))
    assert {(r["ProviderName"], r["ServiceName"]): money(r["billed"]) for r in by_service} == {
        group: money(total) for group, total in expected.items()
    }
    assert {"OpenAI", "AWS"} <= {r["ProviderName"] for r in by_service}
    assert len({r["ServiceName"] for r in by_service}) >= 4

    # Neither provider's secret reaches the AWS run's log download.
    log = client.get(f"/pipelines/logs/{ORG}/{aws_run}/download", headers={"X-API-Key": key})
    text = log.get_data(as_text=True)
    assert log.status_code == 200 and "aws_focus_export_raw" in text
    assert aws_secret["secret_access_key"] not in text and OPENAI_SECRET not in text

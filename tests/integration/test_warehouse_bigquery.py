"""What only the BigQuery backend has, on the emulator: location, partitions and clustering,
job reuse for a redelivered attempt, staging tables, errors naming the job, and reads of
another project with an org's own service account.

The guarantees both backends share are in test_warehouse_conformance.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from pipeline.runs.lineage import stamp
from pipeline_ops_core.errors import TerminalError
from tests.integration.bigquery_emulator import PROJECT, bigquery_emulator  # noqa: F401
from tests.support.servers import Server
from warehouse import from_url
from warehouse.base import JobContext, LineageKey, TableRef
from warehouse.bigquery.backend import BigQueryWarehouse
from warehouse.bigquery.jobs import WriteJobs
from warehouse.schemas import TABLE_SCHEMAS, with_lineage

D1 = date(2026, 1, 1)
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = LineageKey("acme", "demo_pipe", "main", D1, D1)


def warehouse(emulator: Server, project: str = PROJECT) -> BigQueryWarehouse:
    wh = from_url(f"bigquery://{project}?location=US&endpoint={emulator.url}")
    assert isinstance(wh, BigQueryWarehouse)
    return wh


@pytest.fixture
def wh(bigquery_emulator: Server) -> BigQueryWarehouse:  # noqa: F811
    return warehouse(bigquery_emulator)


@pytest.fixture
def usage_table(wh: BigQueryWarehouse) -> TableRef:
    ref = TableRef(f"t{uuid.uuid4().hex[:10]}_dev", "demo_usage_raw")
    wh.ensure_dataset(ref.dataset)
    wh.ensure_table(ref, with_lineage(TABLE_SCHEMAS["demo_usage_raw"]))
    return ref


def usage(tokens: list[int], run_id: str = "run_1", model: str = "gpt-4o") -> pa.Table:
    n = len(tokens)
    rows = pa.table(
        {
            "usage_date": pa.array([D1] * n, pa.date32()),
            "provider": ["openai"] * n,
            "model": [f"{model}-{i}" for i in range(n)],
            "input_tokens": pa.array(tokens, pa.int64()),
            "output_tokens": pa.array([0] * n, pa.int64()),
            "requests": pa.array([1] * n, pa.int64()),
        }
    )
    return stamp(rows, KEY, run_id, AT, date_column="usage_date")


def tokens(wh: BigQueryWarehouse, ref: TableRef) -> list[int]:
    out = wh.query(f"SELECT input_tokens FROM `{ref}` ORDER BY input_tokens")
    return out.column("input_tokens").to_pylist()


def table_names(wh: BigQueryWarehouse, dataset: str) -> list[str]:
    return sorted(t.table_id for t in wh.client.list_tables(f"{PROJECT}.{dataset}"))


def test_dataset_location_partitioning_and_clustering(
    wh: BigQueryWarehouse, usage_table: TableRef
) -> None:
    assert wh.client.get_dataset(f"{PROJECT}.{usage_table.dataset}").location == "US"
    table = wh.client.get_table(f"{PROJECT}.{usage_table}")
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == "x_ingestion_date"
    assert table.clustering_fields == ["x_org_slug", "x_pipeline_id"]
    wh.ensure_dataset(usage_table.dataset)  # exists: fine
    other = warehouse_in(wh, "EU")
    with pytest.raises(TerminalError, match="is in US, not in EU"):
        other.ensure_dataset(usage_table.dataset)


def warehouse_in(wh: BigQueryWarehouse, location: str) -> BigQueryWarehouse:
    return from_url(f"bigquery://{PROJECT}?location={location}&endpoint={wh.config.endpoint}")  # type: ignore[return-value]


def test_a_redelivered_attempt_reuses_its_finished_write(
    wh: BigQueryWarehouse, usage_table: TableRef
) -> None:
    attempt = JobContext("run_1", "extract", attempt=1)
    first = wh.write_partition(usage_table, usage([10, 20]), KEY, job_context=attempt)
    assert (first.rows_written, first.rows_deleted) == (2, 0)
    # The broker delivers attempt 1 again (its worker died after the write): the finished
    # DML job is found by its id and reported; nothing is loaded or written twice.
    again = wh.write_partition(usage_table, usage([99]), KEY, job_context=attempt)
    assert again == first
    assert tokens(wh, usage_table) == [10, 20]
    # A new attempt is new work.
    retry = JobContext("run_1", "extract", attempt=2)
    second = wh.write_partition(usage_table, usage([99]), KEY, job_context=retry)
    assert (second.rows_written, second.rows_deleted) == (1, 2)
    assert tokens(wh, usage_table) == [99]
    # Staging tables are gone after every write.
    assert table_names(wh, usage_table.dataset) == ["demo_usage_raw"]


def test_a_failed_job_is_superseded_and_errors_name_the_job(
    wh: BigQueryWarehouse, usage_table: TableRef
) -> None:
    attempt = JobContext("run_2", "extract", attempt=1)
    wh.write_partition(usage_table, usage([1]), KEY)
    bad = usage([5])
    bad = bad.set_column(bad.schema.get_field_index("requests"), "requests", pa.array(["x"]))
    with pytest.raises(TerminalError, match=r"\(job po_extract_a1_w1_[0-9a-f]{16}_dml\)"):
        wh.write_partition(usage_table, bad, KEY, job_context=attempt)
    assert tokens(wh, usage_table) == [1]
    # The same attempt delivered again: the failed job id is not reused; a new generation
    # of the job runs the write.
    result = wh.write_partition(usage_table, usage([7]), KEY, job_context=attempt)
    assert (result.rows_written, result.rows_deleted) == (1, 1)
    assert tokens(wh, usage_table) == [7]
    jobs = WriteJobs.for_write(PROJECT, usage_table, attempt)
    assert wh.client.get_job(jobs.job_id("dml"), location="US").error_result is not None
    assert wh.client.get_job(jobs.job_id("dml", 2), location="US").error_result is None
    assert table_names(wh, usage_table.dataset) == ["demo_usage_raw"]


def test_unknown_table_and_bad_sql_are_terminal(wh: BigQueryWarehouse) -> None:
    with pytest.raises(TerminalError, match="notFound"):
        wh.query("SELECT * FROM `nope_dev.nothing`")
    with pytest.raises(TerminalError, match="invalidQuery"):
        wh.query("SELEC 1")
    with pytest.raises(TerminalError, match="does not exist; call ensure_table first"):
        wh.write_partition(TableRef("nope_dev", "t"), usage([1]), KEY)


# --- another project, read with an org's own service account -------------------------------


class TokenServer:
    """A loopback OAuth token endpoint: records each JWT grant and answers with a token."""

    def __init__(self) -> None:
        self.assertions: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.assertions += parse_qs(body).get("assertion", [])
                reply = json.dumps({"access_token": "t0k", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.close()


def fake_service_account(token_uri: str) -> tuple[dict[str, Any], bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = {
        "type": "service_account",
        "project_id": "acme-billing-reader",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "reader@acme-billing-reader.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    return info, public


def test_query_reads_another_project_with_the_orgs_service_account(
    bigquery_emulator: Server,  # noqa: F811
    token_server: TokenServer,
) -> None:
    # The customer's billing export lives in their own project.
    customer = warehouse(bigquery_emulator, "customer-proj")
    export = TableRef(f"billing_{uuid.uuid4().hex[:8]}", "gcp_billing_export")
    customer.ensure_dataset(export.dataset)
    customer.ensure_table(export, with_lineage(TABLE_SCHEMAS["demo_usage_raw"]))
    customer.write_partition(export, usage([3, 4]), KEY)

    info, public_key = fake_service_account(token_server.url)
    reader = warehouse(bigquery_emulator).with_credentials(info)
    assert reader.project == "acme-billing-reader"  # jobs run in the key's project
    got = reader.query(
        f"SELECT SUM(input_tokens) AS total FROM `customer-proj.{export}` WHERE x_org_slug = @org",
        {"org": "acme"},
    )
    assert got.to_pylist() == [{"total": 7}]
    # The client authenticated as the service account: one grant, signed with its key.
    assert len(token_server.assertions) == 1
    claims = jwt.decode(token_server.assertions[0], certs=public_key)
    assert claims["iss"] == info["client_email"]


def test_a_bad_service_account_key_is_terminal_and_never_quoted(wh: BigQueryWarehouse) -> None:
    info, _ = fake_service_account("http://127.0.0.1:9/token")
    with pytest.raises(TerminalError, match="lacks private_key") as missing:
        wh.with_credentials({**info, "private_key": ""})
    with pytest.raises(TerminalError, match="malformed") as malformed:
        wh.with_credentials({**info, "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n"})
    with pytest.raises(TerminalError, match="not a service-account key"):
        wh.with_credentials({**info, "type": "authorized_user"})
    assert "abc" not in str(malformed.value) and "BEGIN" not in str(missing.value)


# --- the CLI on BigQuery ------------------------------------------------------------------


def pipeline_ops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("pipeline-ops")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bootstrap_sync_adds_columns_and_refuses_to_retype(
    bigquery_emulator: Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    org = f"cli{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'meta.db'}",
        "WAREHOUSE_URL": f"bigquery://{PROJECT}?location=US&endpoint={bigquery_emulator.url}",
        "PIPELINE_OPS_VAR_DIR": str(tmp_path),
    }
    assert pipeline_ops(env, "db", "upgrade").returncode == 0
    assert pipeline_ops(env, "orgs", "create", org).returncode == 0
    wh = warehouse(bigquery_emulator)
    # An older release made demo_prices with a text price and no output price.
    prices = TableRef(f"{org}_dev", "demo_prices")
    old = with_lineage(TABLE_SCHEMAS["demo_prices"])
    old = old.remove(old.get_field_index("output_per_mtok"))
    old = old.set(old.get_field_index("input_per_mtok"), pa.field("input_per_mtok", pa.string()))
    wh.ensure_table(prices, old)

    synced = pipeline_ops(env, "bootstrap-sync", "--org", org)
    assert synced.returncode == 1
    assert synced.stdout.splitlines() == [
        f"{prices}: added output_per_mtok",
        f"{prices}: not retyped: input_per_mtok is STRING, the schema says FLOAT64",
        "1 table(s) changed",
    ]
    assert "never retypes or drops" in synced.stderr
    got = wh.table_schema(prices)
    assert got is not None and got.field("input_per_mtok").type == pa.string()

    boot = pipeline_ops(env, "bootstrap", "--org", org)
    assert boot.returncode == 0, boot.stderr
    assert "sp_demo_daily_cost" in boot.stdout
    assert wh.table_schema(TableRef(f"{org}_dev", "demo_daily_cost")) is not None
    routines = {r.routine_id for r in wh.client.list_routines(f"{PROJECT}.{org}_dev")}
    assert "sp_demo_daily_cost" in routines

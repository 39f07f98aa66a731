"""ExternalBqExtractor without BigQuery: credential, client, config checks and error mapping."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials

from pipeline_ops_core.errors import TerminalError, TransientError
from processors.cloud.gcp.billing_export import (
    ExternalBqExtractor,
    bigquery_client,
    read_errors,
    secrets_of,
    service_account_info,
    translate,
)
from processors.cloud.gcp.export_rows import parse_table_name
from tests.support.gcp_catalog_server import pem_lines, service_account_key
from tests.support.genai import step_context
from warehouse.duckdb import DuckDBWarehouse

TABLE = "acme-billing.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
WHO = "reader@acme-reader.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def key_info() -> dict[str, Any]:
    return service_account_key(
        "http://127.0.0.1:9/token",
        project_id="acme-reader",
        private_key_id="abcdef0123456789abcdef0123456789abcdef01",
        client_email=WHO,
    )


# -- the credential and the client -------------------------------------------------------------


def test_the_key_may_be_the_credential_or_nested_as_json(key_info: dict[str, Any]) -> None:
    assert service_account_info({**key_info, "billing_table": TABLE}) == {
        **key_info,
        "billing_table": TABLE,
    }
    assert service_account_info({"service_account": json.dumps(key_info)}) == key_info
    assert service_account_info({"service_account": key_info}) == key_info
    assert service_account_info({"billing_table": TABLE}) is None
    with pytest.raises(TerminalError, match="service_account is not JSON"):
        service_account_info({"service_account": "{not json"})


def test_a_client_acts_as_the_key_and_runs_jobs_in_its_project(key_info: dict[str, Any]) -> None:
    client, who = bigquery_client(key_info, parse_table_name(TABLE))
    assert who == WHO and client.project == "acme-reader"
    assert client._credentials.service_account_email == WHO
    client, _ = bigquery_client({**key_info, "job_project": "acme-jobs"}, parse_table_name(TABLE))
    assert client.project == "acme-jobs"


def test_an_emulator_endpoint_allows_anonymous_reads() -> None:
    client, who = bigquery_client(
        {"api_endpoint": "http://127.0.0.1:9050/"}, parse_table_name(TABLE)
    )
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client.project == "acme-billing" and who == "anonymous (emulator)"
    assert client._connection.API_BASE_URL == "http://127.0.0.1:9050"


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ({}, "needs a service-account key"),
        ({"api_endpoint": "file:///etc/passwd"}, "api_endpoint: must be an http"),
        ({"api_endpoint": "127.0.0.1:9050"}, "api_endpoint: must be an http"),
        ({"type": "authorized_user"}, "needs a service-account key"),
    ],
)
def test_bad_credentials_are_terminal(credential: dict[str, Any], message: str) -> None:
    with pytest.raises(TerminalError, match=message):
        bigquery_client(credential, parse_table_name(TABLE))


def test_a_malformed_key_is_refused_without_quoting_it(key_info: dict[str, Any]) -> None:
    broken = {**key_info, "private_key": key_info["private_key"][:200]}
    with (
        pytest.raises(TerminalError, match="is malformed") as caught,
        read_errors(TABLE, WHO, secrets_of(broken)),
    ):
        bigquery_client(broken, parse_table_name(TABLE))
    assert not any(line in str(caught.value) for line in pem_lines(key_info))


# -- errors --------------------------------------------------------------------------------------


def bq_error(cls: type[gexc.GoogleAPICallError], reason: str, message: str) -> Exception:
    return cls(message, errors=[{"reason": reason, "message": message}])


def test_a_missing_table_names_the_table() -> None:
    exc = bq_error(gexc.NotFound, "notFound", f"Not found: Table {TABLE} was not found in US")
    error = translate(exc, TABLE, WHO, [])
    assert type(error) is TerminalError
    assert str(error) == (
        f"GCP billing export table {TABLE} not found or not readable as {WHO}: "
        f"Not found: Table {TABLE} was not found in US (grant it BigQuery Data Viewer on the "
        "export dataset and BigQuery Job User in the job project)"
    )
    # From an overridden endpoint, the answer is not quoted; missing and denied read alike.
    denied = bq_error(gexc.Forbidden, "accessDenied", "Access Denied: Table acme-billing:b.t")
    assert str(translate(exc, TABLE, WHO, [], echo=False)) == str(
        translate(denied, TABLE, WHO, [], echo=False)
    )
    assert "Not found:" not in str(translate(exc, TABLE, WHO, [], echo=False))


def test_access_denied_is_terminal_and_says_what_to_grant() -> None:
    exc = bq_error(gexc.Forbidden, "accessDenied", "Access Denied: Table acme-billing:billing.t")
    error = translate(exc, TABLE, WHO, [])
    assert type(error) is TerminalError
    assert str(error).startswith(
        f"GCP billing export table {TABLE} not found or not readable as {WHO}: Access Denied:"
    )
    assert "BigQuery Data Viewer" in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        bq_error(gexc.Forbidden, "rateLimitExceeded", "Exceeded rate limits"),  # a 403, yet
        bq_error(gexc.InternalServerError, "backendError", "Backend error"),
        gexc.ServiceUnavailable("The service is currently unavailable"),
        gexc.RetryError("Deadline of 30.0s exceeded", cause=None),
        requests.ConnectionError("Connection refused"),
        auth_exc.TransportError("token endpoint unreachable"),
    ],
)
def test_throttling_outages_and_connection_errors_are_transient(exc: Exception) -> None:
    error = translate(exc, TABLE, WHO, [])
    assert isinstance(error, TransientError) and error.retry_after == 30.0
    assert str(error).startswith(
        (
            f"BigQuery unavailable reading GCP billing export table {TABLE}",
            f"{WHO} could not reach the key's token_uri",
        )
    )


def test_a_rejected_key_is_terminal_and_never_quoted(key_info: dict[str, Any]) -> None:
    # A token endpoint that echoes what it was sent, or answers 200 with other JSON, must not
    # reach the message: auth errors are mapped to fixed text.
    leaked = f"invalid_grant: bad key {pem_lines(key_info)[3]} ({key_info['private_key_id']})"
    with pytest.raises(TerminalError) as caught, read_errors(TABLE, WHO, secrets_of(key_info)):
        raise auth_exc.RefreshError(leaked, {"internal": "redis-config-dump"})
    message = str(caught.value)
    assert message.startswith(f"{WHO} could not authenticate to read GCP billing export table")
    assert "invalid_grant" not in message and "redis-config-dump" not in message
    assert key_info["private_key_id"] not in message
    assert not any(line in message for line in pem_lines(key_info))


def test_our_own_errors_pass_through_unless_they_quote_a_secret() -> None:
    secrets = ["s3cr3t-value"]
    with pytest.raises(TerminalError, match=r"^plain$"), read_errors(TABLE, WHO, secrets):
        raise TerminalError("plain")
    with pytest.raises(TransientError, match=r"^busy$"), read_errors(TABLE, WHO, secrets):
        raise TransientError("busy")
    with (
        pytest.raises(TerminalError, match=r"^key \[REDACTED\] bad$"),
        read_errors(TABLE, WHO, secrets),
    ):
        raise TerminalError("key s3cr3t-value bad")


# -- config ------------------------------------------------------------------------------------


def run(tmp_path: Path, config: dict[str, Any], credential: dict[str, Any] | None = None) -> None:
    ctx = step_context(
        DuckDBWarehouse(tmp_path / "w.duckdb"),
        config,
        date(2026, 10, 1),
        credential=credential or {"billing_table": TABLE, "api_endpoint": "http://127.0.0.1:9"},
    )
    ExternalBqExtractor().run(ctx)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"partition_filter": "export_time"}, "partition_filter must be one of partitiontime, "),
        ({"margin_days": -1}, "margin_days must be a whole number of days from 0 to 60"),
        ({"margin_days": "3"}, "margin_days must be a whole number"),
        ({"lookback_days": True}, "lookback_days must be a whole number"),
        ({"lookback_days": 61}, "lookback_days must be a whole number"),
        ({"billing_table": "acme.billing.costs"}, "is not a Cloud Billing export table"),
    ],
)
def test_bad_config_fails_before_anything_is_read(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(TerminalError, match=message):
        run(tmp_path, config)


def test_no_table_anywhere_says_where_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="set billing_table in the credential or the step"):
        run(tmp_path, {}, credential={"api_endpoint": "http://127.0.0.1:9"})

"""Hostile tenants against the egress policy, on a live stack: redis-server, a Celery worker
subprocess, the Flask app, and loopback stand-ins for the internal hosts.

The worker's allow-list (PIPELINE_OPS_EGRESS_ALLOW) holds only the ports of the legitimate
stand-ins (a provider API proxy and a token endpoint the operator approved). The internal
stand-in (playing the metadata service, the broker's Redis) is on another loopback port,
not allow-listed: it must never see a connection, and its answer must never come back.
Addresses that are not loopback (metadata, private ranges) are only ever checked by the
decision function: no packet goes to them (see tests/unit/test_egress_policy.py).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner

from notify.base import NotificationSettings
from notify.store import NotificationSettingsStore
from pipeline.runs.service import RunRequest
from pipeline_ops_core.egress import EgressRefused
from tests.integration.conftest import Stack, make_stack, write_pipeline
from tests.integration.test_engine_e2e import table_rows
from tests.support.gcp_catalog_server import TokenServer, service_account_key
from tests.support.hostile import INTERNAL_BODY, InternalHost
from tests.support.provider_api import ProviderAPIServer, serve_openai
from tests.support.servers import Server, port_of

DAYS = [date(2026, 1, 1), date(2026, 1, 2)]
BODY = {"start_date": "2026-01-01", "end_date": "2026-01-02"}
ADMIN_KEY = "admin-key-hostile-0123456789"
ADMIN = {"X-Admin-Key": ADMIN_KEY}
VICTIM, ATTACKER = "victim_org", "hostile_org"
TOKEN_LEAK = "TOKEN-ENDPOINT-JSON-5d2e-do-not-echo"
PROVIDER_LEAK = "PROVIDER-ERROR-BODY-81bb-do-not-echo"
QUICK = """\
pipeline_id: hostile_quick
name: One quick step
provider: hostile
domain: test
steps:
  - step_id: quick
    ps_type: generic.noop
"""


def settings_store(rig: Rig) -> NotificationSettingsStore:
    """The org notification settings as the services keep them (secrets sealed in the vault)."""
    notifications = rig.stack.services.notifications
    assert notifications is not None
    return notifications.org_settings


@dataclass
class Rig:
    stack: Stack
    client: Any
    api: ProviderAPIServer
    token: TokenServer
    internal: InternalHost
    redis: Server
    keys: dict[str, str]

    def run(self, org: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.client.post(
            f"/pipelines/run/{org}/{path}", json=body, headers={"X-API-Key": self.keys[org]}
        )
        assert resp.status_code == 202, resp.get_json()
        return self.stack.wait(resp.get_json()["run_id"], timeout=120)

    def visible_text(self, org: str, run_id: str) -> str:
        """Everything the tenant can read about a run: status, log lines, the download."""
        headers = {"X-API-Key": self.keys[org]}
        parts = [
            self.client.get(f"/pipelines/status/{org}/{run_id}", headers=headers),
            self.client.get(f"/pipelines/logs/{org}/{run_id}", headers=headers),
            self.client.get(f"/pipelines/logs/{org}/{run_id}/steps", headers=headers),
            self.client.get(f"/pipelines/logs/{org}/{run_id}/download", headers=headers),
        ]
        assert all(p.status_code == 200 for p in parts)
        return "\n".join(p.get_data(as_text=True) for p in parts)


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Server, test_configs_dir: Any
) -> Iterator[Rig]:
    from app import create_app

    # The token endpoint answers 200 with JSON, but no token.
    api, internal = ProviderAPIServer(), InternalHost()
    token = TokenServer(answer={"config": TOKEN_LEAK})
    allow = f"127.0.0.1:{port_of(api.url)} 127.0.0.1:{port_of(token.url)}"
    with pytest.MonkeyPatch.context() as patch:
        # The operator's allow-list: the two legitimate stand-ins, nothing else on loopback.
        patch.setenv("PIPELINE_OPS_EGRESS_ALLOW", allow)
        patch.setenv("PIPELINE_OPS_ADMIN_KEY", ADMIN_KEY)
        tmp = tmp_path_factory.mktemp("stack-hostile")
        stack, stop = make_stack("sqlite", tmp, redis_server, None, test_configs_dir)
        assert stack.env["PIPELINE_OPS_EGRESS_ALLOW"] == allow
        write_pipeline(stack, "hostile/test/quick", QUICK)
        settings = replace(stack.settings, admin_key=ADMIN_KEY)
        client = create_app(settings, stack.services).test_client()
        keys = {org: stack.services.orgs.create(org) for org in (VICTIM, ATTACKER)}
        built = Rig(stack, client, api, token, internal, redis_server, keys)
        try:
            yield built
        finally:
            stop()
            for server in (api, token, internal):
                server.close()


@pytest.fixture(scope="module")
def victim_rows(rig: Rig) -> list[dict[str, Any]]:
    """The victim org's OpenAI usage, fetched through its allow-listed proxy: what the
    attacks must never read, change or reach."""
    rig.stack.services.credentials.add(
        VICTIM, "openai", "victim admin",
        {"admin_key": "sk-admin-victim-0123456789", "base_url": rig.api.url},
        credential_id="openai_admin",
    )  # fmt: skip
    serve_openai(rig.api, DAYS)
    run = rig.run(VICTIM, "genai/payg/openai", {**BODY, "credential_id": "openai_admin"})
    assert run.status == "completed", run.error_message
    rows = rows_of(rig, VICTIM, "genai_payg_usage_raw")
    assert rows
    return rows


def rows_of(rig: Rig, org: str, table: str) -> list[dict[str, Any]]:
    try:
        return table_rows(rig.stack, f"{org}_dev.{table}", org).to_pylist()
    except Exception as exc:  # the table was never created: nothing was written
        if "does not exist" in str(exc):
            return []
        raise


def vault_ids(rig: Rig, org: str) -> list[str]:
    return [c["credential_id"] for c in rig.stack.services.credentials.list(org)]


def hostile_urls(rig: Rig) -> list[str]:
    redis_port = port_of(rig.redis.url)
    return [
        f"http://127.0.0.1:{rig.internal.port}/v1",
        f"https://127.0.0.1:{redis_port}/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/",
        "http://metadata.google.internal/computeMetadata/v1/",
        f"http://[::1]:{redis_port}/",
        "https://[::ffff:127.0.0.1]/",
        "https://10.0.0.1/v1",
        "https://0x7f000001/v1",
        "https://2130706433/v1",
        "https://localhost/v1",
        "https://api.openai.com.attacker.example/v1",
    ]


# -- 1. save time: the admin API and the CLI refuse, naming the field; nothing is stored ---------


def test_the_admin_api_refuses_hostile_base_urls_and_stores_nothing(rig: Rig) -> None:
    for url in hostile_urls(rig):
        body = {
            "provider": "openai", "name": "proxy", "credential_id": "evil",
            "secret": {"admin_key": "sk-admin-x", "base_url": url},
        }  # fmt: skip
        resp = rig.client.post(f"/admin/orgs/{ATTACKER}/credentials", json=body, headers=ADMIN)
        problem = resp.get_json()
        assert resp.status_code == 422, (url, problem)
        assert problem["code"] == "egress_refused" and "field base_url" in problem["detail"]
    assert vault_ids(rig, ATTACKER) == []
    assert rig.internal.connections == 0


def test_a_token_uri_and_a_connection_string_endpoint_are_checked_too(rig: Rig) -> None:
    key = service_account_key(
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
        client_email="x@y.iam.gserviceaccount.com",
    )
    gcp = {**key, "billing_table": "p-1234.b.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"}
    azure_key = base64.b64encode(b"k" * 32).decode()
    azure = {
        "connection_string": f"BlobEndpoint=http://127.0.0.1:{rig.internal.port}/acct;"
        f"AccountName=acct;AccountKey={azure_key}",
        "container": "c",
        "export_name": "e",
    }
    cases = [("gcp", gcp, "field token_uri"), ("azure", azure, "field connection_string")]
    for provider, secret, field in cases:
        body = {"provider": provider, "name": "x", "credential_id": "evil", "secret": secret}
        resp = rig.client.post(f"/admin/orgs/{ATTACKER}/credentials", json=body, headers=ADMIN)
        assert resp.status_code == 422 and field in resp.get_json()["detail"], resp.get_json()
        assert key["private_key"] not in resp.get_data(as_text=True)
    assert vault_ids(rig, ATTACKER) == []


def test_the_cli_refuses_with_exit_2_and_stores_nothing(rig: Rig) -> None:
    from app.cli import main

    env = {**rig.stack.env, "PIPELINE_OPS_EGRESS_ALLOW": os.environ["PIPELINE_OPS_EGRESS_ALLOW"]}
    secret = json.dumps({"admin_key": "sk-admin-x", "base_url": "https://0x7f000001/v1"})
    result = CliRunner().invoke(
        main,
        ["credentials", "add", "--org", ATTACKER, "openai", "--name", "evil"],
        input=secret,
        env=env,
    )
    assert result.exit_code == 2, result.output
    assert "field base_url" in result.output and "loopback" in result.output
    webhook = f"http://127.0.0.1:{rig.internal.port}/hook"
    result = CliRunner().invoke(
        main, ["notifications", "set", "--org", ATTACKER, "--webhook", webhook], env=env
    )
    assert result.exit_code == 2 and "the webhook URL" in result.output, result.output
    assert vault_ids(rig, ATTACKER) == []
    assert settings_store(rig).get(ATTACKER) is None


def test_notification_urls_are_refused_and_nothing_is_stored(rig: Rig) -> None:
    for field, url in [
        ("webhook_url", f"http://127.0.0.1:{rig.internal.port}/hook"),
        ("webhook_url", "https://169.254.169.254/hook"),
        ("webhook_url", "https://[::1]/hook"),
        ("slack_webhook_url", "https://hooks.slack.com.attacker.example/services/T/B/X"),
        ("slack_webhook_url", "http://metadata.google.internal/"),
    ]:
        resp = rig.client.put(
            f"/admin/orgs/{ATTACKER}/notifications", json={field: url}, headers=ADMIN
        )
        assert resp.status_code == 422, resp.get_json()
        assert resp.get_json()["code"] == "egress_refused"
    assert settings_store(rig).get(ATTACKER) is None
    assert rig.internal.connections == 0


# -- 1. connect time: a stored hostile endpoint is refused by the worker, before any socket ------


def test_a_stored_base_url_to_an_internal_host_is_refused_by_the_worker(
    rig: Rig, victim_rows: list[dict[str, Any]]
) -> None:
    # Stored straight into the vault, as a row from before the policy (or a DNS change) would be.
    rig.stack.services.credentials.add(
        ATTACKER, "openai", "evil proxy",
        {"admin_key": "sk-admin-evil-0123456789", "base_url": f"http://127.0.0.1:{rig.internal.port}"},
        credential_id="inside",
    )  # fmt: skip
    run = rig.run(ATTACKER, "genai/payg/openai", {**BODY, "credential_id": "inside"})

    assert run.status == "failed"
    assert "credential base_url: refused by the egress policy: the host is a loopback" in (
        run.error_message
    )
    assert rig.internal.connections == 0
    assert INTERNAL_BODY not in rig.visible_text(ATTACKER, run.run_id)
    assert rows_of(rig, ATTACKER, "genai_payg_usage_raw") == []
    assert rows_of(rig, VICTIM, "genai_payg_usage_raw") == victim_rows


def test_a_stored_aws_endpoint_to_an_internal_host_is_refused_by_the_worker(rig: Rig) -> None:
    rig.stack.services.credentials.add(
        ATTACKER, "aws", "evil s3",
        {"access_key_id": "AKIAEVIL", "secret_access_key": "evil-secret-0123456789",
         "endpoint_url": f"http://127.0.0.1:{rig.internal.port}", "bucket": "b",
         "export_name": "e"},
        credential_id="aws_inside",
    )  # fmt: skip
    run = rig.run(
        ATTACKER,
        "aws/cost/billing",
        {"start_date": "2026-01-01", "end_date": "2026-01-31", "credential_id": "aws_inside"},
    )
    assert run.status == "failed"
    assert "credential endpoint_url" in run.error_message
    assert rig.internal.connections == 0
    assert rows_of(rig, ATTACKER, "aws_focus_export_raw") == []


# -- 2. nothing from a tenant-chosen host is echoed ----------------------------------------------


def test_an_overridden_endpoints_error_body_is_not_echoed(
    rig: Rig, victim_rows: list[dict[str, Any]]
) -> None:
    """The allow-listed proxy answers 401 with a body: the run says the status only."""
    rig.stack.services.credentials.add(
        ATTACKER, "openai", "approved proxy",
        {"admin_key": "sk-admin-proxy-0123456789", "base_url": rig.api.url},
        credential_id="proxy",
    )  # fmt: skip
    rig.api.fail(401, message=PROVIDER_LEAK)
    run = rig.run(ATTACKER, "genai/payg/openai", {**BODY, "credential_id": "proxy"})

    assert run.status == "failed"
    assert "HTTP 401 from the endpoint in credential base_url: credentials rejected" in (
        run.error_message
    )
    assert PROVIDER_LEAK not in rig.visible_text(ATTACKER, run.run_id)
    assert rows_of(rig, ATTACKER, "genai_payg_usage_raw") == []
    assert rows_of(rig, VICTIM, "genai_payg_usage_raw") == victim_rows


def test_a_token_endpoints_json_answer_is_not_copied_into_the_error(rig: Rig) -> None:
    key = service_account_key(
        f"{rig.token.url}/token", client_email="reader@hostile.iam.gserviceaccount.com"
    )
    rig.stack.services.credentials.add(
        ATTACKER, "gcp", "gcp export",
        {**key, "billing_table": "acme-billing.b.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
         "api_endpoint": rig.api.url},
        credential_id="gcp_token",
    )  # fmt: skip
    run = rig.run(
        ATTACKER,
        "gcp/cost/billing",
        {"start_date": "2026-01-01", "end_date": "2026-01-01", "credential_id": "gcp_token"},
    )
    assert run.status == "failed"
    assert rig.token.assertions  # the token endpoint was asked, and answered 200 JSON
    assert "token_uri refused the key or answered without a token" in run.error_message
    text = rig.visible_text(ATTACKER, run.run_id)
    assert TOKEN_LEAK not in text and "PRIVATE KEY" not in text


def test_a_webhook_into_the_network_is_refused_and_the_log_is_no_port_scanner(rig: Rig) -> None:
    # Stored straight into the table, as settings from before the policy would be.
    settings_store(rig).put(
        NotificationSettings(
            ATTACKER,
            on_failure=True,
            on_success=True,
            webhook_url=f"http://127.0.0.1:{rig.internal.port}/hook",
            webhook_secret="whsec_hostile_0123456789",
        )
    )
    try:
        request = RunRequest(ATTACKER, "hostile", "test", "quick", DAYS[0], DAYS[0])
        run_id = str(rig.stack.services.runs.start(request).run_id)
        assert rig.stack.wait(run_id).status == "completed"
        line = wait_line(rig, run_id, "notification via webhook failed")
    finally:
        settings_store(rig).delete(ATTACKER)
    assert "refused by the egress policy" in line
    assert "HTTP" not in line and "Connect" not in line and str(rig.internal.port) not in line
    assert rig.internal.connections == 0


def wait_line(rig: Rig, run_id: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in rig.stack.services.store.lines(run_id):
            if text in line.message:
                return str(line.message)
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} line in {run_id}:\n{rig.stack.worker.log()[-3000:]}")


# -- 3. tenant data is read only with the tenant's identity ---------------------------------------


def test_a_billing_table_naming_another_orgs_data_reads_nothing(
    rig: Rig, victim_rows: list[dict[str, Any]]
) -> None:
    """Before: the Gemini step read `billing_table` through the platform's warehouse, so the
    victim's rows landed in the attacker's FOCUS table. Now it is read with the org's own
    key only, and an existing and a missing table read alike."""
    errors = {}
    for cid, table in [
        ("steal", f"{VICTIM}_dev.genai_payg_usage_raw"),
        ("steal_missing", f"{VICTIM}_dev.no_such_table"),
        ("steal_shaped", f"local.{VICTIM}_dev.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"),
    ]:
        rig.stack.services.credentials.add(
            ATTACKER, "gemini", cid, {"billing_table": table, "api_endpoint": rig.api.url},
            credential_id=cid,
        )  # fmt: skip
        run = rig.run(ATTACKER, "genai/payg/gemini", {**BODY, "credential_id": cid})
        assert run.status == "failed"
        errors[cid] = run.error_message
    assert errors["steal"].replace("genai_payg_usage_raw", "T") == errors["steal_missing"].replace(
        "no_such_table", "T"
    )
    assert "own service account" in errors["steal_shaped"]
    assert rows_of(rig, ATTACKER, "genai_payg_usage_raw") == []
    assert rows_of(rig, ATTACKER, "cost_data_standard_1_3") == []
    assert rows_of(rig, VICTIM, "genai_payg_usage_raw") == victim_rows


# -- the pool still serves the other orgs --------------------------------------------------------


def test_after_all_that_the_workers_still_serve_other_orgs(
    rig: Rig, victim_rows: list[dict[str, Any]]
) -> None:
    serve_openai(rig.api, DAYS)
    run = rig.run(VICTIM, "genai/payg/openai", {**BODY, "credential_id": "openai_admin"})
    assert run.status == "completed", run.error_message
    again = rows_of(rig, VICTIM, "genai_payg_usage_raw")
    assert len(again) == len(victim_rows)
    assert rig.internal.connections == 0


# -- every SDK goes through the same decision before any request ----------------------------------


def _refused_with_no_connection(rig: Rig, call: Any) -> None:
    from processors.sdk_egress import guarded, refusal_in

    before = rig.internal.connections
    with pytest.raises(Exception) as caught, guarded("credential endpoint", ("*.example.com",)):
        call(f"http://127.0.0.1:{rig.internal.port}")
    assert refusal_in(caught.value) is not None, repr(caught.value)
    assert isinstance(refusal_in(caught.value), EgressRefused)
    assert rig.internal.connections == before


def test_boto3_azure_oci_and_google_auth_are_refused_before_any_socket(rig: Rig) -> None:
    import boto3
    import google.auth.transport.requests
    import oci
    from azure.storage.blob import BlobServiceClient
    from botocore.config import Config

    def s3(url: str) -> None:
        boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIAX",
            aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}),
        ).get_object(Bucket="b", Key="k")  # fmt: skip

    def blob(url: str) -> None:
        key = base64.b64encode(b"k" * 32).decode()
        creds = {"account_name": "a", "account_key": key}
        service = BlobServiceClient(url, credential=creds, retry_total=0)
        list(service.get_container_client("c").list_blobs())

    def object_storage(url: str) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        config = {
            "user": "ocid1.user.oc1..a", "tenancy": "ocid1.tenancy.oc1..a",
            "fingerprint": "11:22:33:44:55:66:77:88:99:00:aa:bb:cc:dd:ee:ff",
            "region": "us-ashburn-1", "key_content": pem.decode(),
        }  # fmt: skip
        client = oci.object_storage.ObjectStorageClient(
            config, service_endpoint=url, retry_strategy=oci.retry.NoneRetryStrategy()
        )
        client.list_objects("bling", "b")

    def token(url: str) -> None:
        from warehouse.bigquery.client import service_account_credentials

        info = service_account_key(f"{url}/token", client_email="a@b.iam.gserviceaccount.com")
        service_account_credentials(info).refresh(google.auth.transport.requests.Request())

    for call in (s3, blob, object_storage, token):
        _refused_with_no_connection(rig, call)

"""A bearer token for /metrics, and the per-org request rate limit of the org API."""

from __future__ import annotations

from dataclasses import replace

import fakeredis
import pytest
from flask.testing import FlaskClient

from app import create_app
from app.web import rate_limit
from pipeline.bootstrap import build_services
from pipeline.settings import Settings
from tests.support.api import RUN_URL, RecordingDispatcher
from tests.support.records import count_runs

TOKEN = "metrics-token-0123456789"


def client_for(settings: Settings) -> tuple[FlaskClient, object]:
    services = build_services(settings, RecordingDispatcher())
    app = create_app(services=services)
    app.extensions[rate_limit.EXTENSION] = fakeredis.FakeRedis()
    return app.test_client(), services


@pytest.fixture
def protected(settings: Settings, services: object) -> tuple[FlaskClient, object]:
    return client_for(replace(settings, metrics_token=TOKEN, org_rate_limit=3))


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-000000", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
def test_metrics_without_the_token_is_401(protected, header: str | None) -> None:
    client, _ = protected
    headers = {"Authorization": header} if header else {}
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.get_json()["code"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in answer.get_data(as_text=True)


def test_metrics_with_the_token_answers(protected) -> None:
    client, _ = protected
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert "pipeline_ops_metrics_source_up" in answer.get_data(as_text=True)


def test_metrics_stay_open_without_a_configured_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200


def test_an_org_over_its_request_rate_gets_429_and_other_orgs_do_not(protected) -> None:
    client, services = protected
    acme = services.orgs.create("acme")
    globex = services.orgs.create("globex")
    runs_before = count_runs(services.store)

    codes = [
        client.get("/pipelines/history/acme", headers={"X-API-Key": acme}).status_code
        for _ in range(4)
    ]
    refused = client.get("/pipelines/history/acme", headers={"X-API-Key": acme})

    assert codes == [200, 200, 200, 429]
    assert refused.status_code == 429
    problem = refused.get_json()
    assert (problem["code"], problem["limit"]) == ("rate_limited", 3)
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert client.get("/pipelines/history/globex", headers={"X-API-Key": globex}).status_code == 200
    # A refused run request records nothing.
    assert client.post(RUN_URL, json={}, headers={"X-API-Key": acme}).status_code == 429
    assert count_runs(services.store) == runs_before


def test_an_unauthenticated_request_is_not_counted_against_the_org(protected) -> None:
    client, services = protected
    acme = services.orgs.create("acme")
    for _ in range(5):
        assert (
            client.get("/pipelines/history/acme", headers={"X-API-Key": "po_x_y"}).status_code
            == 401
        )
    assert client.get("/pipelines/history/acme", headers={"X-API-Key": acme}).status_code == 200

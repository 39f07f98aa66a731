"""Org keys on every org endpoint, path checks on read endpoints, and the admin key."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage.db import upgrade
from tests.support.api import ADMIN, ADMIN_KEY, RUN_URL, RecordingDispatcher, assert_problem
from tests.support.records import count_runs

RUN_ID = "00000000-0000-0000-0000-000000000000"
ORG_ENDPOINTS = [
    ("post", "/pipelines/run/{org}/test/demo/basic"),
    ("get", "/pipelines/status/{org}/" + RUN_ID),
    ("get", "/pipelines/history/{org}"),
    ("get", "/pipelines/logs/{org}/" + RUN_ID),
    ("get", "/pipelines/logs/{org}/" + RUN_ID + "/steps"),
    ("get", "/pipelines/logs/{org}/" + RUN_ID + "/transitions"),
    ("get", "/pipelines/logs/{org}/" + RUN_ID + "/download"),
    ("post", "/pipelines/cancel/{org}/" + RUN_ID),
]


@pytest.mark.parametrize(("method", "template"), ORG_ENDPOINTS)
def test_missing_key_is_401_on_every_org_endpoint(
    client: FlaskClient, org_key: str, method: str, template: str
) -> None:
    response = getattr(client, method)(template.format(org="acme"))
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "template"), ORG_ENDPOINTS)
def test_unknown_key_is_401_on_every_org_endpoint(
    client: FlaskClient, org_key: str, method: str, template: str
) -> None:
    headers = {"X-API-Key": "po_000000000000_" + "z" * 43}
    response = getattr(client, method)(template.format(org="acme"), headers=headers)
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "template"), ORG_ENDPOINTS)
def test_another_orgs_key_is_404_on_every_org_endpoint(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    method: str,
    template: str,
) -> None:
    client.post(RUN_URL, headers=auth)  # acme has a run; globex must not see a trace of it
    call = getattr(client, method)

    foreign = call(template.format(org="acme"), headers=other_auth)
    no_such_org = call(template.format(org="nosuchorg"), headers=other_auth)

    assert_problem(foreign, 404, "not_found")
    assert foreign.get_data() == no_such_org.get_data()
    assert count_runs(services.store) == 1 and len(dispatcher.enqueued) == 1


@pytest.mark.parametrize(
    "url",
    [
        "/pipelines/status/acme/..",
        "/pipelines/status/acme/%2e%2e",
        "/pipelines/status/acme/..%2F..%2Fetc%2Fpasswd",
        "/pipelines/status/acme/a%2Fb",
        "/pipelines/status/acme/ABC",
        "/pipelines/status/Acme/" + RUN_ID,
        "/pipelines/history/acme%00",
        "/pipelines/logs/acme/../../etc/passwd",
        "/pipelines/logs/acme/" + RUN_ID + "/..",
        "/pipelines/run/acme/test/demo/basic/../../x",
        "/pipelines/history/ac me",
    ],
)
def test_bad_segments_on_read_endpoints_are_400(
    client: FlaskClient, auth: dict[str, str], url: str
) -> None:
    method = client.post if "/run/" in url else client.get
    assert_problem(method(url, headers=auth), 400, "invalid_path")


def test_unknown_route_under_pipelines_is_404_after_the_key(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert_problem(client.get("/pipelines/nothing/acme"), 401, "unauthorized")
    assert_problem(client.get("/pipelines/nothing/acme", headers=auth), 404, "not_found")


# --- admin -----------------------------------------------------------------------------


def test_admin_creates_an_org_whose_key_works(
    client: FlaskClient, services: Services, dispatcher: RecordingDispatcher
) -> None:
    response = client.post(
        "/admin/orgs", json={"org_slug": "initech", "name": "Initech"}, headers=ADMIN
    )

    assert response.status_code == 201
    data = response.get_json()
    assert set(data) == {"org_slug", "name", "api_key"}
    assert (data["org_slug"], data["name"]) == ("initech", "Initech")
    run = client.post(
        "/pipelines/run/initech/test/demo/basic", headers={"X-API-Key": data["api_key"]}
    )
    assert run.status_code == 202
    assert services.store.get_run(run.get_json()["run_id"]).org_slug == "initech"  # type: ignore[index]


def test_admin_org_name_defaults_to_the_slug(client: FlaskClient) -> None:
    data = client.post("/admin/orgs", json={"org_slug": "hooli"}, headers=ADMIN).get_json()
    assert data["name"] == "hooli"


def test_admin_lists_orgs_without_keys(client: FlaskClient, org_key: str, other_key: str) -> None:
    response = client.get("/admin/orgs", headers=ADMIN)

    assert response.status_code == 200
    orgs = response.get_json()["orgs"]
    assert [(o["org_slug"], o["name"]) for o in orgs] == [
        ("acme", "Acme Corp"),
        ("globex", "Globex"),
    ]
    assert all(set(org) == {"org_slug", "name", "created_at"} for org in orgs)
    text = response.get_data(as_text=True)
    assert org_key not in text and other_key not in text and "api_key" not in text


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"org_slug": "acme"}}, 409, "already_exists"),
        ({"json": {"org_slug": "Bad Slug"}}, 422, "validation_error"),
        ({"json": {"org_slug": "a"}}, 422, "validation_error"),
        ({"json": {"org_slug": "ok_slug\n"}}, 422, "validation_error"),
        ({"json": {"name": "no slug"}}, 422, "validation_error"),
        ({"json": {"org_slug": "fine", "api_key": "mine"}}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"data": "org_slug=x", "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": "{", "content_type": "application/json"}, 400, "invalid_json"),
    ],
)
def test_admin_create_org_rejections(
    client: FlaskClient,
    org_key: str,
    services: Services,
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    assert_problem(client.post("/admin/orgs", headers=ADMIN, **kwargs), status, code)
    assert [org["org_slug"] for org in services.store.list_orgs()] == ["acme"]


@pytest.mark.parametrize(("method", "url"), [("get", "/admin/orgs"), ("post", "/admin/orgs")])
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Admin-Key": ""}, {"X-Admin-Key": "wrong"}, {"X-Admin-Key": ADMIN_KEY + "x"}],
    ids=["missing", "empty", "wrong", "longer"],
)
def test_admin_without_the_right_key_is_401(
    client: FlaskClient, services: Services, method: str, url: str, headers: dict[str, str]
) -> None:
    response = getattr(client, method)(url, json={"org_slug": "sneaky"}, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert services.store.get_org("sneaky") is None


def test_org_key_is_not_an_admin_key(client: FlaskClient, org_key: str) -> None:
    response = client.get("/admin/orgs", headers={"X-Admin-Key": org_key, "X-API-Key": org_key})
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "url"), [("get", "/admin/orgs"), ("post", "/admin/orgs")])
@pytest.mark.parametrize("headers", [{}, {"X-Admin-Key": ""}, {"X-Admin-Key": "anything"}])
def test_admin_is_403_when_no_admin_key_is_configured(
    settings: Settings, method: str, url: str, headers: dict[str, str]
) -> None:
    no_admin = replace(settings, admin_key=None)
    upgrade(no_admin.database_url)
    services = build_services(no_admin, RecordingDispatcher())
    client = create_app(services=services).test_client()

    response = getattr(client, method)(url, json={"org_slug": "sneaky"}, headers=headers)

    assert_problem(response, 403, "admin_disabled")
    assert services.store.get_org("sneaky") is None

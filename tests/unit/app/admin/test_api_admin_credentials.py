"""Admin credential and org-key endpoints: store, list, disable, delete, rotate, revoke."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from pipeline.bootstrap import Services
from tests.support.api import ADMIN, OPENAI_URL, RUN_URL, RecordingDispatcher, assert_problem
from tests.support.records import count_runs

BASE = "/admin/orgs/acme"
SECRET = "sk-admin-api-secret-0123456789"
BODY = {"provider": "openai", "name": "Main key", "credential_id": "main", "secret": SECRET}


@pytest.fixture
def stored(client: FlaskClient, org_key: str) -> dict[str, object]:
    response = client.post(f"{BASE}/credentials", json=BODY, headers=ADMIN)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_store_returns_metadata_and_never_the_secret(
    client: FlaskClient, stored: dict[str, object], services: Services
) -> None:
    assert set(stored) == {
        "org_slug",
        "credential_id",
        "provider",
        "name",
        "key_id",
        "enabled",
        "created_at",
        "rotated_at",
        "disabled_at",
    }
    assert (stored["credential_id"], stored["provider"], stored["enabled"]) == (
        "main",
        "openai",
        True,
    )
    listed = client.get(f"{BASE}/credentials", headers=ADMIN)
    assert listed.status_code == 200
    assert listed.get_json()["credentials"] == [stored]
    assert SECRET not in listed.get_data(as_text=True)
    # Stored encrypted, and the worker side gets the plain key back in the field the
    # provider declares for it (providers.yml: openai_admin_key.plain_field).
    assert services.credentials.get("acme", "main") == {"admin_key": SECRET}


def test_a_json_object_secret_is_stored_as_is(client: FlaskClient, org_key: str, services) -> None:
    body = {**BODY, "secret": {"admin_key": "k-0123456789", "base_url": "http://127.0.0.1:9"}}
    assert client.post(f"{BASE}/credentials", json=body, headers=ADMIN).status_code == 201
    assert services.credentials.get("acme", "main") == body["secret"]


@pytest.mark.parametrize(
    ("provider", "secret", "named"),
    [
        ("openai", {"admin_kye": "sk-admin-typo-0123456789"}, "unknown field(s) admin_kye"),
        ("openai", {"base_url": "http://127.0.0.1:9"}, "needs admin_key or api_key"),
        ("aws", {"access_key_id": "AKIAEXAMPLE"}, "missing field(s) secret_access_key"),
        (
            "aws",
            {"access_key_id": "AKIA", "secret_access_key": SECRET, "bucket_name": "b"},
            "unknown field(s) bucket_name",
        ),
        ("aws", SECRET, "must be a JSON object, not plain text"),
        ("oci", {"user": "ocid1.user", "key_content": SECRET}, "missing field(s) fingerprint"),
        ("demo", SECRET, "provider demo takes no credential"),
        ("nosuchprovider", SECRET, "provider 'nosuchprovider' is not in providers.yml"),
    ],
)
def test_secrets_are_checked_against_the_providers_fields_and_nothing_is_stored(
    client: FlaskClient,
    org_key: str,
    services: Services,
    provider: str,
    secret: object,
    named: str,
) -> None:
    body = {**BODY, "provider": provider, "secret": secret}

    response = client.post(f"{BASE}/credentials", json=body, headers=ADMIN)

    problem = assert_problem(response, 422, response.get_json()["code"])
    assert problem["code"] in ("invalid_credential", "terminal")
    assert named in problem["detail"]
    assert SECRET not in response.get_data(as_text=True)
    assert services.credentials.list() == []  # type: ignore[attr-defined]


def test_a_run_can_use_the_credential_until_it_is_disabled(
    client: FlaskClient,
    stored: dict[str, object],
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
) -> None:
    ok = client.post(OPENAI_URL, json={"credential_id": "main"}, headers=auth)
    assert ok.status_code == 202

    disabled = client.post(f"{BASE}/credentials/main/disable", headers=ADMIN)
    assert disabled.status_code == 200 and disabled.get_json()["enabled"] is False
    refused = client.post(
        OPENAI_URL, json={"credential_id": "main", "start_date": "2024-01-01"}, headers=auth
    )
    body = assert_problem(refused, 422, "invalid_credential")
    assert "disabled" in body["detail"]
    assert count_runs(services.store) == 1 and len(dispatcher.enqueued) == 1

    enabled = client.post(f"{BASE}/credentials/main/enable", headers=ADMIN)
    assert enabled.get_json()["enabled"] is True and enabled.get_json()["disabled_at"] is None


def test_a_credential_of_another_provider_is_refused_with_422(
    client: FlaskClient, org_key: str, auth: dict[str, str], services: Services
) -> None:
    other = {**BODY, "provider": "openai", "credential_id": "oai"}
    assert client.post(f"{BASE}/credentials", json=other, headers=ADMIN).status_code == 201

    response = client.post(RUN_URL, json={"credential_id": "oai"}, headers=auth)

    body = assert_problem(response, 422, "invalid_credential")
    assert body["detail"] == (
        "credential 'oai' is for provider 'openai', but pipeline test_demo_basic needs a "
        "'test' credential"
    )
    assert "run_id" not in body
    assert count_runs(services.store) == 0


def test_a_missing_credential_is_refused_with_422(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    response = client.post(RUN_URL, json={"credential_id": "nope"}, headers=auth)
    body = assert_problem(response, 422, "invalid_credential")
    assert body["detail"] == "credential 'nope' not found for org 'acme'"
    assert count_runs(services.store) == 0


def test_delete(client: FlaskClient, stored: dict[str, object], services: Services) -> None:
    response = client.delete(f"{BASE}/credentials/main", headers=ADMIN)
    assert response.status_code == 204 and response.get_data() == b""
    assert client.get(f"{BASE}/credentials", headers=ADMIN).get_json() == {"credentials": []}
    assert_problem(client.delete(f"{BASE}/credentials/main", headers=ADMIN), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "provider": "Open AI"}, "provider"),
        ({**BODY, "provider": "x'; DROP TABLE org_credentials; --"}, "provider"),
        ({**BODY, "credential_id": "../etc"}, "credential_id"),
        ({**BODY, "secret": ""}, "secret"),
        ({**BODY, "secret": {}}, "secret"),
        ({**BODY, "secret": 12}, "secret"),
        ({k: v for k, v in BODY.items() if k != "secret"}, "secret"),
        ({**BODY, "extra": 1}, "extra"),
    ],
)
def test_bad_bodies_are_422_and_store_nothing(
    client: FlaskClient, org_key: str, services: Services, body: dict[str, object], field: str
) -> None:
    response = client.post(f"{BASE}/credentials", json=body, headers=ADMIN)
    problem = assert_problem(response, 422, "validation_error")
    assert field in [e["field"] for e in problem["errors"]]
    assert SECRET not in response.get_data(as_text=True)
    assert services.credentials.list() == []  # type: ignore[attr-defined]


def test_a_duplicate_is_409(client: FlaskClient, stored: dict[str, object]) -> None:
    response = client.post(f"{BASE}/credentials", json=BODY, headers=ADMIN)
    assert_problem(response, 409, "already_exists")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/orgs/nosuchorg/credentials"),
        ("post", "/admin/orgs/nosuchorg/credentials"),
        ("post", "/admin/orgs/nosuchorg/rotate-key"),
        ("post", "/admin/orgs/acme/credentials/nope/disable"),
        ("delete", "/admin/orgs/acme/credentials/nope"),
    ],
)
def test_unknown_orgs_and_credentials_are_404(
    client: FlaskClient, org_key: str, method: str, path: str
) -> None:
    kwargs = {"json": BODY} if path.endswith("credentials") and method == "post" else {}
    response = getattr(client, method)(path, headers=ADMIN, **kwargs)
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/orgs/Acme/credentials",
        "/admin/orgs/acme'--/credentials",
        "/admin/orgs/acme/credentials/Main/disable",
        "/admin/orgs/%D0%B0cme/credentials",  # Cyrillic a (U+0430)
    ],
)
def test_malformed_path_segments_are_400(client: FlaskClient, org_key: str, path: str) -> None:
    response = client.post(path, headers=ADMIN, json=BODY)
    assert_problem(response, 400, "invalid_path")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", f"{BASE}/credentials"),
        ("get", f"{BASE}/credentials"),
        ("post", f"{BASE}/credentials/main/disable"),
        ("post", f"{BASE}/credentials/main/enable"),
        ("delete", f"{BASE}/credentials/main"),
        ("post", f"{BASE}/rotate-key"),
        ("post", f"{BASE}/revoke-key"),
    ],
)
def test_every_admin_endpoint_needs_the_admin_key(
    client: FlaskClient, org_key: str, method: str, path: str
) -> None:
    for headers in ({}, {"X-Admin-Key": "wrong"}, {"X-API-Key": org_key}, {"X-Admin-Key": org_key}):
        response = getattr(client, method)(path, headers=headers, json=BODY)
        assert_problem(response, 401, "unauthorized")


def test_rotate_and_revoke_org_keys(client: FlaskClient, org_key: str) -> None:
    status = "/pipelines/history/acme"

    rotated = client.post(f"{BASE}/rotate-key", json={"overlap_seconds": 600}, headers=ADMIN)

    assert rotated.status_code == 200
    body = rotated.get_json()
    assert body["org_slug"] == "acme" and body["previous_key_expires_at"]
    new = body["api_key"]
    assert client.get(status, headers={"X-API-Key": org_key}).status_code == 200  # overlap
    assert client.get(status, headers={"X-API-Key": new}).status_code == 200

    only_previous = client.post(f"{BASE}/revoke-key", json={"previous_only": True}, headers=ADMIN)
    assert only_previous.get_json() == {"org_slug": "acme", "revoked": "previous"}
    assert client.get(status, headers={"X-API-Key": org_key}).status_code == 401
    assert client.get(status, headers={"X-API-Key": new}).status_code == 200

    everything = client.post(f"{BASE}/revoke-key", headers=ADMIN)
    assert everything.get_json() == {"org_slug": "acme", "revoked": "all"}
    assert client.get(status, headers={"X-API-Key": new}).status_code == 401


@pytest.mark.parametrize(
    "body", [{"overlap_seconds": -1}, {"overlap_seconds": "60"}, {"overlap_seconds": 10**9}]
)
def test_bad_overlaps_are_422_and_keep_the_key(
    client: FlaskClient, org_key: str, body: dict[str, object]
) -> None:
    response = client.post(f"{BASE}/rotate-key", json=body, headers=ADMIN)
    assert_problem(response, 422, "validation_error")
    assert client.get("/pipelines/history/acme", headers={"X-API-Key": org_key}).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "x=1", "content_type": "application/x-www-form-urlencoded"}, 415, None),
        ({"data": "<a/>", "content_type": "application/xml"}, 415, None),
        ({"json": {"unexpected": True}}, 422, "validation_error"),
        (
            {"data": b"{" + b" " * (1024 * 1024) + b"}", "content_type": "application/json"},
            413,
            None,
        ),
    ],
)
def test_bodies_on_bodiless_endpoints_are_refused_and_change_nothing(
    client: FlaskClient, stored: dict[str, object], kwargs, status: int, code: str | None
) -> None:
    response = client.post(f"{BASE}/credentials/main/disable", headers=ADMIN, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert client.get(f"{BASE}/credentials", headers=ADMIN).get_json()["credentials"][0]["enabled"]


def test_admin_responses_carry_the_security_headers(client: FlaskClient, org_key: str) -> None:
    for response in (
        client.get(f"{BASE}/credentials", headers=ADMIN),
        client.get(f"{BASE}/credentials"),  # 401
        client.post("/admin/orgs/Bad/credentials", headers=ADMIN),  # 400
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]

"""The console's sign-in, session, CSRF and org isolation, through Flask's test client on a
real SQLite metadata DB (the browser tests in tests/integration cover the same in Chromium).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.console import CONSOLE_CSP
from app.web import rate_limit
from pipeline.bootstrap import Services
from pipeline.runs.service import RunRequest
from tests.support.api import ADMIN_KEY
from tests.support.records import count_runs


@pytest.fixture
def app(services: Services) -> Flask:
    built = create_app(services=services)
    built.extensions[rate_limit.EXTENSION] = fakeredis.FakeRedis()
    return built


def token(client: FlaskClient, path: str = "/ui/signin") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, key: str, next_path: str = "") -> str:
    response = client.post(
        "/ui/signin", data={"key": key, "csrf_token": token(client), "next": next_path}
    )
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])


def start(services: Services, org: str) -> str:
    run = services.runs.start(RunRequest(org, "generic", "demo", "single", date(2026, 1, 1)))
    return run.run_id


def test_a_wrong_key_is_refused_and_signs_nobody_in(client: FlaskClient, org_key: str) -> None:
    response = client.post(
        "/ui/signin", data={"key": org_key[:-1] + "x", "csrf_token": token(client)}
    )
    assert response.status_code == 401
    assert "That key is not valid" in response.text
    assert org_key not in response.text
    assert client.get("/ui/acme/runs").status_code == 302  # still signed out


def test_sign_in_sets_a_scoped_session_cookie_and_sign_out_ends_it(
    client: FlaskClient, org_key: str
) -> None:
    response = client.post("/ui/signin", data={"key": org_key, "csrf_token": token(client)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/ui" in cookie
    assert "Expires=" in cookie and "Secure" not in cookie  # http public URL
    assert org_key not in cookie
    assert client.get("/ui/acme/runs").status_code == 200
    client.post("/ui/signout", data={"csrf_token": token(client, "/ui/acme/runs")})
    assert client.get("/ui/acme/runs").status_code == 302


def test_cookie_is_secure_behind_https(services: Services, org_key: str) -> None:
    from dataclasses import replace

    secure = create_app(
        replace(services.settings, public_base_url="https://ops.example"), services=services
    )
    client = secure.test_client()
    response = client.post("/ui/signin", data={"key": org_key, "csrf_token": token(client)})
    assert "Secure" in response.headers["Set-Cookie"]


def test_forms_without_the_csrf_token_change_nothing(
    client: FlaskClient, services: Services, org_key: str
) -> None:
    sign_in(client, org_key)
    run_id = start(services, "acme")
    before = count_runs(services.store, "acme")
    refused = client.post(f"/ui/acme/runs/{run_id}/cancel")
    assert refused.status_code == 400 and "reload the page" in refused.text
    assert services.store.get_run(run_id).status == "queued"  # type: ignore[union-attr]
    refused = client.post("/ui/acme/pipelines/run", data={"pipeline": "generic/demo/single"})
    assert refused.status_code == 400
    assert count_runs(services.store, "acme") == before
    # With its token the same form works.
    done = client.post(
        f"/ui/acme/runs/{run_id}/cancel", data={"csrf_token": token(client, "/ui/acme/runs")}
    )
    assert done.status_code == 302
    assert services.store.get_run(run_id).status == "cancelled"  # type: ignore[union-attr]


def test_another_orgs_pages_are_404_like_a_missing_org(
    client: FlaskClient, services: Services, org_key: str, other_key: str
) -> None:
    theirs = start(services, "globex")
    sign_in(client, org_key)
    for path in (
        f"/ui/globex/runs/{theirs}",
        f"/ui/acme/runs/{theirs}",
        "/ui/globex/runs",
        "/ui/globex/spend",
        "/ui/nosuchorg/runs",
        f"/ui/globex/runs/{theirs}/download",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Not found: there is no such page in your organization." in response.text
        assert theirs not in response.text
    refused = client.post(
        f"/ui/globex/runs/{theirs}/cancel", data={"csrf_token": token(client, "/ui/acme/runs")}
    )
    assert refused.status_code == 404
    assert services.store.get_run(theirs).status == "queued"  # type: ignore[union-attr]


def test_the_admin_switches_between_orgs(client: FlaskClient, services: Services) -> None:
    services.orgs.create("acme")
    services.orgs.create("globex")
    assert sign_in(client, ADMIN_KEY) == "/ui/"
    assert client.get("/ui/").headers["Location"] == "/ui/orgs"
    picked = client.post(
        "/ui/orgs", data={"org": "globex", "csrf_token": token(client, "/ui/orgs")}
    )
    assert picked.headers["Location"] == "/ui/globex/runs"
    assert client.get("/ui/acme/runs").status_code == 200
    assert client.get("/ui/nosuchorg/runs").status_code == 404


def test_failed_sign_ins_are_rate_limited(
    client: FlaskClient, services: Services, org_key: str
) -> None:
    limit = services.settings.signin_rate_limit
    for _ in range(limit):
        bad = client.post("/ui/signin", data={"key": "po_nope", "csrf_token": token(client)})
        assert bad.status_code == 401
    blocked = client.post("/ui/signin", data={"key": org_key, "csrf_token": token(client)})
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert client.get("/ui/acme/runs").status_code == 302  # even the right key waits


def test_a_rotated_out_key_ends_the_session(
    client: FlaskClient, services: Services, org_key: str
) -> None:
    sign_in(client, org_key)
    assert client.get("/ui/acme/runs").status_code == 200
    services.orgs.rotate_key("acme")
    assert client.get("/ui/acme/runs").status_code == 302


def test_next_never_leaves_the_console(client: FlaskClient, org_key: str) -> None:
    assert sign_in(client, org_key, "https://evil.example/ui/") == "/ui/"
    client.post("/ui/signout", data={"csrf_token": token(client, "/ui/acme/runs")})
    assert sign_in(client, org_key, "/ui/acme/coverage") == "/ui/acme/coverage"


def test_console_pages_have_their_own_csp_and_the_api_keeps_its_own(
    client: FlaskClient, org_key: str, auth: dict[str, str]
) -> None:
    sign_in(client, org_key)
    for path in ("/ui/signin", "/ui/acme/runs", "/ui/acme/pipelines", "/ui/acme/coverage"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == CONSOLE_CSP, path
        assert "'unsafe-inline'" not in CONSOLE_CSP and "http" not in CONSOLE_CSP
    api = client.get("/pipelines/history/acme", headers=auth)
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    # Nothing the pages load comes from another origin, and no inline script runs.
    page = client.get("/ui/acme/runs").text
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script>" not in page and " on" + "click=" not in page


def test_every_page_renders_its_empty_state(client: FlaskClient, org_key: str) -> None:
    sign_in(client, org_key)
    assert "No runs yet" in client.get("/ui/acme/runs").text
    assert "No runs yet" in client.get("/ui/acme/grid").text
    assert "No cost data yet" in client.get("/ui/acme/spend").text
    assert "generic/demo/single" in client.get("/ui/acme/pipelines").text
    assert client.get("/ui/acme/coverage?days=90").status_code == 200
    assert "Runs today (UTC)" in client.get("/ui/acme/quota").text


def test_runs_are_paged_newest_first(client: FlaskClient, services: Services, org_key: str) -> None:
    services.plans.set_limits("acme", concurrent=100)  # the runs stay queued
    for day in range(1, 56):
        services.runs.start(
            RunRequest("acme", "generic", "demo", "single", date(2025, 1, 1) + timedelta(day))
        )
    sign_in(client, org_key)
    first = client.get("/ui/acme/runs?status=queued").text
    assert first.count('<tr>\n    <td><a href="/ui/acme/runs/') == 50
    older = re.search(r'<a class="button" href="([^"]+)" rel="next">', first)
    assert older and "status=queued" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert second.count('<tr>\n    <td><a href="/ui/acme/runs/') == 5
    assert 'rel="next"' not in second
    assert "2025-01-02" in second and "2025-02-25" in first  # newest first
    bad = client.get("/ui/acme/runs?cursor=not-a-cursor")
    assert bad.status_code == 200 and "no longer valid" in bad.text


def test_a_quota_refusal_from_the_console_is_counted(
    app: Flask, client: FlaskClient, services: Services, org_key: str
) -> None:
    services.plans.set_limits("acme", concurrent=1)
    start(services, "acme")  # holds the one slot
    sign_in(client, org_key)
    before = count_runs(services.store, "acme")
    refused = client.post(
        "/ui/acme/pipelines/run",
        data={
            "pipeline": "generic/demo/single",
            "start_date": "2026-01-02",
            "csrf_token": token(client, "/ui/acme/pipelines"),
        },
        follow_redirects=True,
    )
    assert "Could not start generic/demo/single" in refused.text
    assert count_runs(services.store, "acme") == before
    page = client.get("/ui/acme/quota").text
    assert re.search(r"refused by the quota in the last 24 h: <strong>1</strong>", page)

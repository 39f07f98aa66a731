"""Admin schedules and notifications endpoints, and GET /metrics."""

from __future__ import annotations

import fakeredis
import pytest
from flask.testing import FlaskClient

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline_ops_core.errors import QuotaExceededError
from quota.base import AllowAllGate
from tests.support.api import ADMIN, RUN_URL, RecordingDispatcher, assert_problem

SCHEDULE_URL = "/admin/orgs/acme/schedules/test/demo/basic"


@pytest.fixture
def fake_redis(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    server = fakeredis.FakeServer()
    monkeypatch.setattr("app.api.metrics._redis", lambda svc: fakeredis.FakeRedis(server=server))
    return fakeredis.FakeRedis(server=server)


# --- schedules ----------------------------------------------------------------------------


def test_enable_list_and_disable_a_schedule(client: FlaskClient, org_key: str) -> None:
    response = client.put(SCHEDULE_URL, json={"cron": "0 4 * * *"}, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["enabled"] is True and body["effective_cron"] == "0 4 * * *"
    assert body["pipeline_path"] == "test/demo/basic" and body["catch_up"] == "latest"
    assert body["next_tick"].endswith("T04:00:00+00:00")

    listed = client.get("/admin/orgs/acme/schedules", headers=ADMIN).get_json()["schedules"]
    assert [s["pipeline_path"] for s in listed] == ["test/demo/basic"]

    off = client.put(SCHEDULE_URL, json={"enabled": False}, headers=ADMIN).get_json()
    assert off["enabled"] is False and off["next_tick"] is None

    dispatches = client.get(SCHEDULE_URL + "/dispatches", headers=ADMIN)
    assert dispatches.status_code == 200 and dispatches.get_json() == {"dispatches": []}


def test_schedule_problems(client: FlaskClient, org_key: str) -> None:
    assert_problem(client.put(SCHEDULE_URL, json={"cron": "x"}), 401, "unauthorized")
    # The test pipeline has no `schedule` in its YAML, so enabling needs a cron.
    assert_problem(client.put(SCHEDULE_URL, headers=ADMIN), 422, "terminal")
    bad_cron = client.put(SCHEDULE_URL, json={"cron": "61 * * * *"}, headers=ADMIN)
    assert "bad cron" in assert_problem(bad_cron, 422, "terminal")["detail"]
    bad_policy = client.put(SCHEDULE_URL, json={"catch_up": "maybe"}, headers=ADMIN)
    assert_problem(bad_policy, 422, "validation_error")
    missing = client.put("/admin/orgs/acme/schedules/test/demo/nope", json={"cron": "0 4 * * *"})
    assert missing.status_code == 401
    nope = client.put(
        "/admin/orgs/acme/schedules/test/demo/nope", json={"cron": "0 4 * * *"}, headers=ADMIN
    )
    assert_problem(nope, 404, "not_found")
    assert_problem(client.get("/admin/orgs/nobody/schedules", headers=ADMIN), 404, "not_found")


# --- notifications ------------------------------------------------------------------------


def test_set_and_get_notification_settings(client: FlaskClient, org_key: str) -> None:
    assert client.get("/admin/orgs/acme/notifications", headers=ADMIN).get_json() == {
        "org_slug": "acme",
        "on_failure": True,
        "on_success": False,
        "webhook_url": None,
        "webhook_secret_set": False,
        "slack_webhook_url": None,
        "email_to": [],
        "channels": [],
    }
    body = {
        "webhook_url": "https://hooks.acme.test/pipeline-ops",
        "slack_webhook_url": "https://hooks.slack.com/services/T1/B2/tokentoken",
        "email_to": ["ops@acme.test"],
        "on_success": True,
    }
    saved = client.put("/admin/orgs/acme/notifications", json=body, headers=ADMIN)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    first = saved.get_json()
    assert first["webhook_secret"].startswith("whsec_")
    assert first["channels"] == ["webhook", "slack", "email"]
    assert first["slack_webhook_url"] == "https://hooks.slack.com/…"

    shown = client.get("/admin/orgs/acme/notifications", headers=ADMIN).get_json()
    assert "webhook_secret" not in shown and shown["webhook_secret_set"] is True
    assert "tokentoken" not in str(shown)
    again = client.put("/admin/orgs/acme/notifications", json=body, headers=ADMIN).get_json()
    assert "webhook_secret" not in again  # kept, so not shown again
    rotated = client.put(
        "/admin/orgs/acme/notifications",
        json={**body, "rotate_webhook_secret": True},
        headers=ADMIN,
    ).get_json()
    assert rotated["webhook_secret"] != first["webhook_secret"]


def test_notification_settings_are_validated(client: FlaskClient, org_key: str) -> None:
    url = "/admin/orgs/acme/notifications"
    assert_problem(
        client.put(url, json={"webhook_url": "ftp://x"}, headers=ADMIN), 422, "validation_error"
    )
    assert_problem(
        client.put(url, json={"email_to": ["nope"]}, headers=ADMIN), 422, "validation_error"
    )
    assert_problem(client.get("/admin/orgs/nobody/notifications", headers=ADMIN), 404, "not_found")


# --- metrics ------------------------------------------------------------------------------


def _metric_lines(client: FlaskClient) -> list[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True).splitlines()


def test_metrics_expose_runs_steps_queue_and_sources(
    client: FlaskClient, auth: dict[str, str], services: Services, fake_redis: fakeredis.FakeRedis
) -> None:
    run_id = client.post(RUN_URL, json={}, headers=auth).get_json()["run_id"]
    services.store.transition(run_id, "running")
    started = services.store.begin_attempt(
        run_id,
        "extract",
        1,
        exists=False,
        task_id="t",
        worker="w",
        alive_for=0,
        message="go",
    )
    services.executor.failed(run_id, "extract", 1, "boom")
    assert started is not None
    fake_redis.rpush("celery", b"m1", b"m2", b"m3")

    lines = _metric_lines(client)

    assert 'pipeline_ops_runs_total{pipeline_id="test_demo_basic",status="failed"} 1.0' in lines
    assert 'pipeline_ops_step_duration_seconds_count{status="failed"} 1.0' in lines
    assert 'pipeline_ops_step_duration_seconds_bucket{le="+Inf",status="failed"} 1.0' in lines
    assert 'pipeline_ops_queue_depth{queue="celery"} 3.0' in lines
    assert 'pipeline_ops_quota_rejections_total{limit="daily"} 0.0' in lines
    assert 'pipeline_ops_metrics_source_up{source="database"} 1.0' in lines
    assert 'pipeline_ops_metrics_source_up{source="redis"} 1.0' in lines


def test_metrics_survive_a_down_redis(client: FlaskClient) -> None:
    lines = _metric_lines(client)  # the test settings point at a port nothing listens on
    assert 'pipeline_ops_metrics_source_up{source="redis"} 0.0' in lines
    assert not any(line.startswith("pipeline_ops_queue_depth{") for line in lines)


class _RefusingGate(AllowAllGate):
    def reserve(self, org_slug: str, run_id: str) -> None:
        raise QuotaExceededError("concurrent", limit_value=2, current=2, retry_after=30)

    def release(self, org_slug: str, run_id: str, succeeded: bool) -> bool:
        return True

    def heartbeat(self, org_slug: str, run_id: str) -> None:
        return None


def test_quota_rejections_are_counted_by_limit(
    settings: Settings, services: Services, org_key: str, fake_redis: fakeredis.FakeRedis
) -> None:
    gated = build_services(settings, RecordingDispatcher(), gate=_RefusingGate())
    client = create_app(services=gated).test_client()
    for _ in range(2):
        assert_problem(
            client.post(RUN_URL, json={}, headers={"X-API-Key": org_key}), 429, "quota_exceeded"
        )

    lines = _metric_lines(client)

    assert 'pipeline_ops_quota_rejections_total{limit="concurrent"} 2.0' in lines
    assert 'pipeline_ops_quota_rejections_total{limit="daily"} 0.0' in lines


def test_http_requests_are_counted_by_route_never_by_path_or_invented_method(
    settings: Settings, services: Services, org_key: str, fake_redis: fakeredis.FakeRedis
) -> None:
    from dataclasses import replace

    from prometheus_client.parser import text_string_to_metric_families

    live = build_services(
        replace(settings, eager=False, metrics_cache_seconds=0), RecordingDispatcher()
    )
    client = create_app(services=live).test_client()
    headers = {"X-API-Key": org_key}
    for run_id in ("a" * 36, "b" * 36, "c" * 36):
        client.get(f"/pipelines/status/acme/{run_id}", headers=headers)
    for method in ("BREW", "WHEN", "PROPFIND"):
        client.open("/health/live", method=method)
    client.get(f"/no/such/{'x' * 20}")

    text = client.get("/metrics").get_data(as_text=True)

    counts = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "pipeline_ops_http_requests"
        for s in f.samples
    }
    assert counts[("/pipelines/status/<org>/<run_id>", "GET", "404")] == 3.0
    assert counts[("(unmatched)", "other", "405")] == 3.0  # no rule matched the method
    assert counts[("(unmatched)", "GET", "404")] == 1.0
    assert "a" * 36 not in text and "BREW" not in text and "x" * 20 not in text

"""Quota over HTTP: the admin limits endpoints, and 429/403 refusals that record nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from quota import periods
from tests.support.api import ADMIN, RUN_URL, RecordingDispatcher, assert_problem
from tests.support.records import count_runs
from tests.support.servers import free_port

LIMITS_URL = "/admin/orgs/acme/limits"


def set_limits(client: FlaskClient, **body: object) -> dict:
    response = client.put(LIMITS_URL, json=body, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def start(client: FlaskClient, auth: dict[str, str], day: str) -> TestResponse:
    return client.post(RUN_URL, json={"start_date": day}, headers=auth)


def test_admin_sets_limits_and_reads_usage(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    assert set_limits(client, daily_limit=10, concurrent_limit=2) == {
        "org_slug": "acme",
        "status": "ACTIVE",
        "daily_limit": 10,
        "monthly_limit": services.settings.default_monthly_limit,
        "concurrent_limit": 2,
        "source": "database",
    }
    assert set_limits(client, status="TRIAL")["daily_limit"] == 10  # the rest is kept
    run_id = start(client, auth, "2024-05-01").get_json()["run_id"]

    report = client.get("/admin/orgs/acme/quota", headers=ADMIN).get_json()

    assert report["plan"]["status"] == "TRIAL"
    usage = report["usage"]
    assert (usage["daily_runs"], usage["monthly_runs"], usage["concurrent_running"]) == (1, 1, 1)
    assert [lease["run_id"] for lease in usage["leases"]] == [run_id]
    assert report["mirror"]["status"].startswith("ledger only")


def test_concurrent_refusal_is_429_with_the_limit_and_records_no_run(
    client: FlaskClient, auth: dict[str, str], services: Services, dispatcher: RecordingDispatcher
) -> None:
    set_limits(client, concurrent_limit=1)
    first = start(client, auth, "2024-05-01")
    assert first.status_code == 202

    response = start(client, auth, "2024-05-02")

    problem = assert_problem(response, 429, "quota_exceeded")
    assert (problem["limit"], problem["limit_value"], problem["current"]) == ("concurrent", 1, 1)
    assert problem["detail"] == "concurrent quota exceeded: 1 of 1 used"
    assert response.headers["Retry-After"] == str(periods.CONCURRENT_RETRY_AFTER)
    assert count_runs(services.store, "acme") == 1
    assert len(dispatcher.enqueued) == 1


def test_daily_refusal_retries_after_utc_midnight(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    set_limits(client, daily_limit=1)
    assert start(client, auth, "2024-05-01").status_code == 202
    before = datetime.now(UTC)

    response = start(client, auth, "2024-05-02")

    problem = assert_problem(response, 429, "quota_exceeded")
    assert (problem["limit"], problem["limit_value"], problem["current"]) == ("daily", 1, 1)
    assert problem["detail"] == "daily quota exceeded: 1 of 1 used"
    retry = int(response.headers["Retry-After"])
    assert abs(retry - periods.seconds_until(before, periods.next_day(before))) <= 2
    assert count_runs(services.store, "acme") == 1


@pytest.mark.parametrize("status", ["SUSPENDED", "CANCELLED"])
def test_an_inactive_subscription_is_403_and_records_no_run(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    dispatcher: RecordingDispatcher,
    status: str,
) -> None:
    set_limits(client, status=status)

    problem = assert_problem(start(client, auth, "2024-05-01"), 403, "subscription_inactive")

    assert problem["detail"] == f"the subscription of acme is {status}: runs are not admitted"
    assert count_runs(services.store) == 0 and dispatcher.enqueued == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"daily_limit": -1}, "daily_limit"),
        ({"concurrent_limit": "5"}, "concurrent_limit"),
        ({"monthly_limit": 1.5}, "monthly_limit"),
        ({"status": "PAUSED"}, "status"),
        ({"limit": 3}, "limit"),
        ({}, "_body"),
    ],
)
def test_bad_limits_are_422_with_the_field(
    client: FlaskClient, org_key: str, body: dict, field: str
) -> None:
    problem = assert_problem(
        client.put(LIMITS_URL, json=body, headers=ADMIN), 422, "validation_error"
    )
    assert field in {e["field"] for e in problem["errors"]}


def test_limits_need_the_admin_key_a_known_org_and_a_clean_path(
    client: FlaskClient, org_key: str
) -> None:
    assert_problem(client.put(LIMITS_URL, json={"daily_limit": 1}), 401, "unauthorized")
    wrong = {"X-Admin-Key": "nope"}
    assert_problem(
        client.put(LIMITS_URL, json={"daily_limit": 1}, headers=wrong), 401, "unauthorized"
    )
    unknown = client.put("/admin/orgs/nobody/limits", json={"daily_limit": 1}, headers=ADMIN)
    assert_problem(unknown, 404, "not_found")
    assert_problem(client.get("/admin/orgs/nobody/quota", headers=ADMIN), 404, "not_found")
    bad = client.put("/admin/orgs/Bad-Org/limits", json={"daily_limit": 1}, headers=ADMIN)
    assert_problem(bad, 400, "invalid_path")


def test_openapi_documents_the_quota_endpoints(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "put" in paths["/admin/orgs/{org}/limits"]
    assert "get" in paths["/admin/orgs/{org}/quota"]


def test_health_says_quota_is_degraded_when_redis_is_unreachable(
    settings: Settings, services: Services
) -> None:
    live = replace(settings, eager=False, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(services=build_services(live, RecordingDispatcher())).test_client()

    response = client.get("/health")

    # Still ready: the quota goes on with its SQL ledger.
    assert response.status_code == 200 and response.get_json()["status"] == "degraded"
    redis_check = response.get_json()["checks"]["redis"]
    assert redis_check.startswith("ConnectionError")
    assert "degraded: quota is enforced by the SQL ledger alone" in redis_check

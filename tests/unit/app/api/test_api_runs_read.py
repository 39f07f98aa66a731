"""Status, history, logs, steps, transitions, download and cancel of runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert

from app import create_app
from pipeline.bootstrap import Services, build_services
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.tables import log_lines, step_logs
from tests.support.api import RUN_URL, SINGLE_URL, RecordingDispatcher, assert_problem

UNKNOWN_RUN = "00000000-0000-0000-0000-000000000000"


def _start(client: FlaskClient, auth: dict[str, str], url: str = RUN_URL, **body: object) -> str:
    response = client.post(url, json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["run_id"])


def _iso_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def _record_steps(services: Services, run_id: str) -> None:
    """extract: a failed then a completed attempt; noop_a running; the rest not started.

    Rows go straight into the tables (the worker's write path is not under test here).
    """
    t0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    services.store.transition(run_id, state.RUNNING, "step extract started")
    attempts = [
        ("extract", 1, "failed", 0, 0, 1500, "HTTP 503 from provider"),
        ("extract", 2, "completed", 42, 60, 2500, None),
        ("noop_a", 1, "running", 0, 90, None, None),
    ]
    lines = [
        ("INFO", "extract", 1, "extract attempt 1 started"),
        ("WARNING", "extract", 1, "HTTP 503 from provider; retrying"),
        ("INFO", "extract", 2, "extracted 42 rows"),
        ("INFO", "noop_a", 1, "noop_a attempt 1 started"),
    ]
    with services.store.engine.begin() as conn:
        for step_id, attempt, status, rows, start_s, duration_ms, error in attempts:
            started = t0 + timedelta(seconds=start_s)
            ended = None if duration_ms is None else started + timedelta(milliseconds=duration_ms)
            conn.execute(
                insert(step_logs).values(
                    run_id=run_id,
                    step_id=step_id,
                    attempt=attempt,
                    status=status,
                    started_at=started,
                    ended_at=ended,
                    duration_ms=duration_ms,
                    rows_written=rows,
                    error=error,
                )
            )
        for index, (level, step_id, attempt, message) in enumerate(lines):
            conn.execute(
                insert(log_lines).values(
                    run_id=run_id,
                    ts=t0 + timedelta(seconds=index),
                    level=level,
                    step_id=step_id,
                    attempt=attempt,
                    message=message,
                )
            )


# --- status -----------------------------------------------------------------------------


def test_status_of_a_new_run_lists_planned_steps_as_pending(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    run_id = _start(client, auth, start_date="2024-03-01", end_date="2024-03-03")

    response = client.get(f"/pipelines/status/acme/{run_id}", headers=auth)

    assert response.status_code == 200
    data = response.get_json()
    assert {
        "run_id",
        "org_slug",
        "pipeline_id",
        "status",
        "created_at",
        "started_at",
        "ended_at",
        "duration_ms",
        "error_message",
        "start_date",
        "end_date",
        "steps",
    } <= set(data)
    assert (data["run_id"], data["org_slug"], data["status"]) == (run_id, "acme", "queued")
    assert (data["start_date"], data["end_date"]) == ("2024-03-01", "2024-03-03")
    _iso_utc(data["created_at"])
    assert data["started_at"] is None and data["duration_ms"] is None
    assert data["steps"] == [
        {"step_id": step, "status": "pending", "attempts": 0, "rows_written": None}
        for step in ("extract", "noop_a", "noop_b", "unify")
    ]


def test_status_summarises_attempts(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    run_id = _start(client, auth)
    _record_steps(services, run_id)

    data = client.get(f"/pipelines/status/acme/{run_id}", headers=auth).get_json()

    assert data["status"] == "running"
    _iso_utc(data["started_at"])
    assert data["steps"] == [
        {"step_id": "extract", "status": "completed", "attempts": 2, "rows_written": 42},
        {"step_id": "noop_a", "status": "running", "attempts": 1, "rows_written": None},
        {"step_id": "noop_b", "status": "pending", "attempts": 0, "rows_written": None},
        {"step_id": "unify", "status": "pending", "attempts": 0, "rows_written": None},
    ]
    assert (data["rows_written"], data["warnings"]) == (42, [])


def test_status_warns_when_a_completed_run_loaded_nothing(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    run_id = _start(client, auth, url=SINGLE_URL, start_date="2024-03-01")
    services.store.transition(run_id, state.RUNNING, "started")
    services.runs.complete(run_id)

    data = client.get(f"/pipelines/status/acme/{run_id}", headers=auth).get_json()

    assert data["status"] == "completed"
    assert data["rows_written"] == 0
    assert data["warnings"] == ["the run completed but wrote no rows for 2024-03-01..2024-03-01"]


def test_status_of_a_finished_run_has_a_duration(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    run_id = _start(client, auth)
    services.store.transition(run_id, state.RUNNING, "started")
    services.runs.fail(run_id, "step extract failed: boom")

    data = client.get(f"/pipelines/status/acme/{run_id}", headers=auth).get_json()

    assert data["status"] == "failed"
    assert data["error_message"] == "step extract failed: boom"
    assert isinstance(data["duration_ms"], int) and data["duration_ms"] >= 0
    assert _iso_utc(data["ended_at"]) >= _iso_utc(data["started_at"])


# --- history ----------------------------------------------------------------------------


def _pages(client: FlaskClient, auth: dict[str, str], query: str) -> list[list[dict]]:
    pages, cursor = [], None
    for _ in range(10):
        url = f"/pipelines/history/acme?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=auth)
        assert response.status_code == 200, response.get_json()
        data = response.get_json()
        pages.append(data["runs"])
        cursor = data["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


def test_history_pages_through_every_run_once_newest_first(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    started = [_start(client, auth, SINGLE_URL, start_date=f"2024-01-0{i}") for i in range(1, 6)]
    _start(client, other_auth, SINGLE_URL.replace("acme", "globex"), start_date="2024-01-01")

    pages = _pages(client, auth, "limit=2")

    assert [len(page) for page in pages] == [2, 2, 1]
    ids = [run["run_id"] for page in pages for run in page]
    assert ids == list(reversed(started))
    created = [_iso_utc(run["created_at"]) for page in pages for run in page]
    assert created == sorted(created, reverse=True)
    assert all(run["org_slug"] == "acme" and "plan" not in run for p in pages for run in p)


def test_history_pagination_is_stable_when_runs_share_a_timestamp(
    settings: Settings, services: Services, org_key: str
) -> None:
    frozen = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    tied = build_services(settings, RecordingDispatcher(), clock=lambda: frozen)
    client, auth = create_app(services=tied).test_client(), {"X-API-Key": org_key}
    started = {_start(client, auth, SINGLE_URL, start_date=f"2024-02-0{i}") for i in range(1, 6)}

    pages = _pages(client, auth, "limit=2")

    ids = [run["run_id"] for page in pages for run in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(ids) == sorted(started) and len(set(ids)) == 5
    assert ids == sorted(ids, reverse=True)


def test_history_defaults_and_filters(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    basic = _start(client, auth)
    single = _start(client, auth, SINGLE_URL)
    services.runs.cancel("acme", single)

    everything = client.get("/pipelines/history/acme", headers=auth).get_json()
    by_pipeline = client.get(
        "/pipelines/history/acme?pipeline_id=test_demo_basic", headers=auth
    ).get_json()
    by_status = client.get("/pipelines/history/acme?status=cancelled", headers=auth).get_json()

    assert [r["run_id"] for r in everything["runs"]] == [single, basic]
    assert everything["next_cursor"] is None
    assert [r["run_id"] for r in by_pipeline["runs"]] == [basic]
    assert [r["run_id"] for r in by_status["runs"]] == [single]


def test_history_of_an_org_without_runs_is_empty(client: FlaskClient, auth: dict[str, str]) -> None:
    data = client.get("/pipelines/history/acme", headers=auth).get_json()
    assert data == {"runs": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=bm9waXBl", "cursor"),  # "nopipe"
        ("cursor=MjAyNC0wMS0wMXxhYmM", "cursor"),  # "2024-01-01|abc": no timezone
        ("status=exploded", "status"),
        ("pipeline_id=../x", "pipeline_id"),
        ("colour=blue", "colour"),
    ],
)
def test_history_rejects_bad_queries(
    client: FlaskClient, auth: dict[str, str], query: str, field: str
) -> None:
    response = client.get(f"/pipelines/history/acme?{query}", headers=auth)
    problem = assert_problem(response, 422, "validation_error")
    assert [error["field"] for error in problem["errors"]] == [field]


# --- logs, steps, transitions, download -------------------------------------------------


def test_logs_return_the_run_and_its_lines(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    run_id = _start(client, auth)
    _record_steps(services, run_id)

    data = client.get(f"/pipelines/logs/acme/{run_id}", headers=auth).get_json()

    assert data["run"]["run_id"] == run_id and data["run"]["status"] == "running"
    assert [(line["level"], line["step_id"], line["attempt"]) for line in data["lines"]] == [
        ("INFO", "extract", 1),
        ("WARNING", "extract", 1),
        ("INFO", "extract", 2),
        ("INFO", "noop_a", 1),
    ]
    assert data["lines"][2]["message"] == "extracted 42 rows"
    assert set(data["lines"][0]) == {"ts", "level", "step_id", "attempt", "message"}
    _iso_utc(data["lines"][0]["ts"])


def test_steps_list_every_attempt(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    run_id = _start(client, auth)
    _record_steps(services, run_id)

    steps = client.get(f"/pipelines/logs/acme/{run_id}/steps", headers=auth).get_json()["steps"]

    assert [(s["step_id"], s["attempt"], s["status"]) for s in steps] == [
        ("extract", 1, "failed"),
        ("extract", 2, "completed"),
        ("noop_a", 1, "running"),
    ]
    assert set(steps[0]) == {
        "step_id",
        "attempt",
        "status",
        "started_at",
        "ended_at",
        "duration_ms",
        "rows_written",
        "error",
    }
    assert steps[0]["error"] == "HTTP 503 from provider"
    assert (steps[1]["rows_written"], steps[1]["duration_ms"]) == (42, 2500)
    assert steps[1]["started_at"] == "2024-03-01T10:01:00+00:00"
    assert steps[1]["ended_at"] == "2024-03-01T10:01:02.500000+00:00"
    assert steps[2]["ended_at"] is None


def test_transitions_list_every_status_change(client: FlaskClient, auth: dict[str, str]) -> None:
    run_id = _start(client, auth)

    body = client.get(f"/pipelines/logs/acme/{run_id}/transitions", headers=auth).get_json()

    moves = [(t["from_status"], t["to_status"]) for t in body["transitions"]]
    assert moves == [(None, "pending"), ("pending", "validating"), ("validating", "queued")]
    assert set(body["transitions"][0]) == {"from_status", "to_status", "at", "reason"}
    assert body["transitions"][0]["reason"] == "requested via api"
    _iso_utc(body["transitions"][0]["at"])


def test_download_is_ndjson_with_run_steps_transitions_and_lines(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    run_id = _start(client, auth)
    _record_steps(services, run_id)

    response = client.get(f"/pipelines/logs/acme/{run_id}/download", headers=auth)

    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="run_{run_id}.ndjson"'
    text = response.get_data(as_text=True)
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    kinds = [record["type"] for record in records]
    assert kinds == ["run"] + ["step"] * 3 + ["transition"] * 4 + ["line"] * 4
    assert records[0]["run_id"] == run_id and records[0]["status"] == "running"
    assert records[2]["rows_written"] == 42
    assert records[-1]["message"] == "noop_a attempt 1 started"


# --- cancel -----------------------------------------------------------------------------


def test_cancel_ends_the_run_and_revokes_its_tasks(
    client: FlaskClient, auth: dict[str, str], services: Services, dispatcher: RecordingDispatcher
) -> None:
    run_id = _start(client, auth)

    response = client.post(f"/pipelines/cancel/acme/{run_id}", headers=auth)

    assert response.status_code == 202
    data = response.get_json()
    assert (data["run_id"], data["status"]) == (run_id, "cancelled")
    assert data["links"]["status"].endswith(f"/pipelines/status/acme/{run_id}")
    assert [r for r, _ in dispatcher.revoked] == [run_id]
    run = services.store.get_run(run_id)
    assert run is not None and run.status == "cancelled"


def test_cancelling_a_finished_run_is_409(client: FlaskClient, auth: dict[str, str]) -> None:
    run_id = _start(client, auth)
    client.post(f"/pipelines/cancel/acme/{run_id}", headers=auth)

    problem = assert_problem(
        client.post(f"/pipelines/cancel/acme/{run_id}", headers=auth), 409, "run_not_active"
    )
    assert "already ended with status cancelled" in problem["detail"]


def test_a_cancelled_run_frees_its_idempotency_key(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    first = _start(client, auth, start_date="2024-04-01")
    client.post(f"/pipelines/cancel/acme/{first}", headers=auth)
    assert _start(client, auth, start_date="2024-04-01") != first


# --- unknown and foreign runs ----------------------------------------------------------

RUN_ENDPOINTS = [
    ("get", "/pipelines/status/{org}/{run_id}"),
    ("get", "/pipelines/logs/{org}/{run_id}"),
    ("get", "/pipelines/logs/{org}/{run_id}/steps"),
    ("get", "/pipelines/logs/{org}/{run_id}/transitions"),
    ("get", "/pipelines/logs/{org}/{run_id}/download"),
    ("post", "/pipelines/cancel/{org}/{run_id}"),
]


@pytest.mark.parametrize(("method", "template"), RUN_ENDPOINTS)
def test_unknown_run_is_404(
    client: FlaskClient, auth: dict[str, str], method: str, template: str
) -> None:
    url = template.format(org="acme", run_id=UNKNOWN_RUN)
    assert_problem(getattr(client, method)(url, headers=auth), 404, "not_found")


@pytest.mark.parametrize(("method", "template"), RUN_ENDPOINTS)
def test_another_orgs_run_is_404_like_an_unknown_run(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    services: Services,
    method: str,
    template: str,
) -> None:
    run_id = _start(client, auth)
    call = getattr(client, method)

    foreign = call(template.format(org="globex", run_id=run_id), headers=other_auth)
    unknown = call(template.format(org="globex", run_id=UNKNOWN_RUN), headers=other_auth)

    assert_problem(foreign, 404, "not_found")
    same_shape = unknown.get_data(as_text=True).replace(UNKNOWN_RUN, run_id)
    assert foreign.get_data(as_text=True) == same_shape
    run = services.store.get_run(run_id)
    assert run is not None and run.status == "queued"


def test_dates_in_json_are_plain_dates(client: FlaskClient, auth: dict[str, str]) -> None:
    run_id = _start(client, auth, start_date="2024-02-29")
    data = client.get(f"/pipelines/status/acme/{run_id}", headers=auth).get_json()
    assert date.fromisoformat(data["start_date"]) == date(2024, 2, 29)
    assert data["end_date"] == "2024-02-29"


def test_runs_created_by_a_ticking_clock_are_ordered(
    settings: Settings, services: Services, org_key: str
) -> None:
    ticks = count()
    base = datetime(2024, 6, 1, tzinfo=UTC)
    ticking = build_services(
        settings, RecordingDispatcher(), clock=lambda: base + timedelta(seconds=next(ticks))
    )
    client, auth = create_app(services=ticking).test_client(), {"X-API-Key": org_key}
    started = [_start(client, auth, SINGLE_URL, start_date=f"2024-03-0{i}") for i in range(1, 4)]

    pages = _pages(client, auth, "limit=1")

    assert [run["run_id"] for page in pages for run in page] == list(reversed(started))


# --- run id prefixes ----------------------------------------------------------------------


def _run_with_id(services: Services, run_id: str, org: str = "acme") -> None:
    services.store.create_run(
        {
            "run_id": run_id,
            "org_slug": org,
            "pipeline_id": "generic_demo_single",
            "pipeline_path": "generic/demo/single",
            "idempotency_key": f"{org}|{run_id}",
            "trigger": "api",
            "credential_id": "default",
            "start_date": date(2024, 3, 1),
            "end_date": date(2024, 3, 1),
            "params": {},
        }
    )


@pytest.mark.parametrize(("method", "template"), RUN_ENDPOINTS)
def test_a_unique_prefix_of_8_or_more_characters_names_the_run(
    client: FlaskClient, auth: dict[str, str], method: str, template: str
) -> None:
    for day, length in (("2024-03-01", 8), ("2024-03-02", 13)):
        run_id = _start(client, auth, start_date=day)
        url = template.format(org="acme", run_id=run_id[:length])

        response = getattr(client, method)(url, headers=auth)

        assert response.status_code in (200, 202), response.get_data(as_text=True)
        if "/status/" in template or "cancel" in template:
            assert response.get_json()["run_id"] == run_id


@pytest.mark.parametrize(("method", "template"), RUN_ENDPOINTS)
def test_short_ambiguous_and_foreign_prefixes_are_refused(
    client: FlaskClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    services: Services,
    method: str,
    template: str,
) -> None:
    _run_with_id(services, "abcdef12-0000-4000-8000-000000000001")
    _run_with_id(services, "abcdef12-0000-4000-8000-000000000002")
    _run_with_id(services, "abcdef12-9999-4000-8000-000000000003")
    _run_with_id(services, "fedcba98-0000-4000-8000-000000000004", org="globex")
    call = getattr(client, method)

    short = call(template.format(org="acme", run_id="abcdef1"), headers=auth)
    body = assert_problem(short, 422, "invalid_run_id")
    assert body["detail"] == (
        "run id 'abcdef1' is too short: give the full id or its first 8 characters or more"
    )
    ambiguous = call(template.format(org="acme", run_id="abcdef12-0000"), headers=auth)
    body = assert_problem(ambiguous, 422, "ambiguous_run_id")
    assert body["detail"] == (
        "run id prefix 'abcdef12-0000' matches 2 runs; give more characters of the id"
    )
    assert (
        "3 runs"
        in call(template.format(org="acme", run_id="abcdef12"), headers=auth).get_json()["detail"]
    )
    # Another org's run is not found by its prefix either, and looks like any unknown run.
    assert_problem(
        call(template.format(org="acme", run_id="fedcba98"), headers=auth), 404, "not_found"
    )
    unique = call(template.format(org="acme", run_id="abcdef12-9"), headers=auth)
    assert unique.status_code in (200, 202), unique.get_data(as_text=True)
    statuses = {r.run_id: r.status for r in services.store.list_runs("acme")}
    expected_cancelled = "cancel" in template
    assert statuses["abcdef12-0000-4000-8000-000000000001"] == "pending"
    assert (statuses["abcdef12-9999-4000-8000-000000000003"] == "cancelled") == expected_cancelled

"""RunService: start, cancel, fail and reap, with a recording dispatcher in place of Celery."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline.bootstrap import Services
from pipeline.runs.service import DateRangeError, RunRequest, idempotency_key
from pipeline.storage import state
from pipeline_ops_core.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    RunNotActiveError,
    ServiceUnavailableError,
    TerminalError,
)
from tests.support.records import count_runs

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


def request(**overrides: object) -> RunRequest:
    values: dict[str, object] = {
        "org_slug": "acme",
        "provider": "test",
        "domain": "unit",
        "pipeline": "fan_in",
        "start_date": D1,
        "end_date": D2,
    }
    values.update(overrides)
    return RunRequest(**values)  # type: ignore[arg-type]


def transitions(services: Services, run_id: str) -> list[tuple[str | None, str]]:
    return [(t.from_status, t.to_status) for t in services.store.transitions(run_id)]


# -- start ----------------------------------------------------------------------------------


def test_start_admits_plans_and_enqueues(services: Services, dispatcher, clock) -> None:
    run = services.runs.start(request(params={"team": "ml"}, trigger="cli"))

    run_id = run.run_id
    assert run.status == state.QUEUED
    assert transitions(services, run_id) == [
        (None, state.PENDING),
        (state.PENDING, state.VALIDATING),
        (state.VALIDATING, state.QUEUED),
    ]
    assert run.org_slug == "acme"
    assert run.pipeline_id == "test_fan_in"
    assert run.pipeline_path == "test/unit/fan_in"
    assert run.credential_id == "default"
    assert (run.start_date, run.end_date) == (D1, D2)
    assert run.params == {"team": "ml"}
    assert run.trigger == "cli"
    assert run.idempotency_key == idempotency_key("acme", "test_fan_in", "default", D1, D2)
    assert run.deadline_at == clock.now + timedelta(seconds=services.settings.queue_timeout)

    plan = run.plan
    assert dispatcher.enqueued == [(run_id, plan)]
    assert plan.pipeline_id == "test_fan_in"
    assert plan.dataset == "acme_dev"
    assert plan.levels == (("a", "b"), ("c",))
    assert plan.steps["a"].config == {
        "day": "2026-01-01",
        "last": "2026-01-02",
        "org": "acme",
        "run": run_id,
    }
    assert plan.steps["b"].config == {"dataset": "acme_dev", "credential": "default"}
    c = plan.steps["c"]
    assert c.depends_on == ("a", "b")
    assert c.ps_type == "generic.noop"
    assert c.timeout_seconds == 45
    assert c.time_limit == 45 + services.settings.time_limit_grace
    assert (c.max_attempts, c.backoff_seconds) == (4, 7)


def test_start_defaults_to_yesterday_and_one_date_means_one_day(services: Services, clock) -> None:
    yesterday = (clock.now - timedelta(days=1)).date()
    run = services.runs.start(request(start_date=None, end_date=None))
    assert (run.start_date, run.end_date) == (yesterday, yesterday)
    only_end = services.runs.start(request(start_date=None, end_date=D1))
    assert (only_end.start_date, only_end.end_date) == (D1, D1)


def test_the_longest_allowed_range_is_366_days(services: Services) -> None:
    run = services.runs.start(request(start_date=D1 - timedelta(days=365), end_date=D1))
    assert run.status == state.QUEUED


FUTURE_OK = """\
pipeline_id: test_ahead
name: May cover tomorrow
provider: test
domain: unit
accepts_future_dates: true
steps:
  - step_id: only
    ps_type: generic.noop
"""


def nothing_recorded(services: Services, dispatcher, clock) -> None:
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []
    ledger = services.gate.ledger.snapshot("acme", clock.now)  # type: ignore[attr-defined]
    assert (ledger.daily_runs, ledger.monthly_runs, ledger.concurrent_running) == (0, 0, 0)


@pytest.mark.parametrize(
    ("pipeline", "days_ahead", "message"),
    [
        (
            "fan_in",
            1,
            "end_date 2026-01-06 is after today (2026-01-05, UTC): no source has cost data for "
            "days that have not happened yet",
        ),
        ("fan_in", 300, "end_date 2026-11-01 is after today (2026-01-05, UTC)"),
        (
            "ahead",
            2,
            "end_date 2026-01-07 is after tomorrow (2026-01-06, UTC), the latest date "
            "pipeline test_ahead accepts",
        ),
    ],
)
def test_dates_after_today_are_refused_unless_the_pipeline_accepts_tomorrow(
    services: Services,
    dispatcher,
    clock,
    write_pipeline,
    pipeline: str,
    days_ahead: int,
    message: str,
) -> None:
    write_pipeline("test/unit/ahead", FUTURE_OK)
    end = clock.now.date() + timedelta(days=days_ahead)

    with pytest.raises(DateRangeError) as info:
        services.runs.start(request(pipeline=pipeline, start_date=clock.now.date(), end_date=end))

    assert message in str(info.value)
    nothing_recorded(services, dispatcher, clock)


def test_a_pipeline_that_accepts_future_dates_may_cover_tomorrow(
    services: Services, clock, write_pipeline
) -> None:
    write_pipeline("test/unit/ahead", FUTURE_OK)
    tomorrow = clock.now.date() + timedelta(days=1)

    run = services.runs.start(request(pipeline="ahead", start_date=tomorrow, end_date=tomorrow))
    today = services.runs.start(request(start_date=clock.now.date(), end_date=clock.now.date()))

    assert run.status == today.status == state.QUEUED


def test_dates_before_2000_are_refused(services: Services, dispatcher, clock) -> None:
    with pytest.raises(DateRangeError) as info:
        services.runs.start(request(start_date=date(1999, 12, 31), end_date=date(2000, 1, 1)))

    assert str(info.value) == (
        "start_date 1999-12-31 is before 2000-01-01, the earliest date a run may cover"
    )
    nothing_recorded(services, dispatcher, clock)
    assert services.runs.start(request(start_date=date(2000, 1, 1), end_date=date(2000, 1, 1)))


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (D2, D1, "before start_date"),
        (D1, D1 + timedelta(days=366), "longer than 366 days"),
        (date(2020, 1, 1), date(2026, 1, 1), "longer than 366 days"),
    ],
)
def test_bad_dates_raise_and_record_nothing(
    services: Services, dispatcher, start: date, end: date, message: str
) -> None:
    with pytest.raises(TerminalError, match=message):
        services.runs.start(request(start_date=start, end_date=end))
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []


def test_an_unknown_org_raises_not_found_and_records_nothing(
    services: Services, dispatcher
) -> None:
    with pytest.raises(NotFoundError, match="org 'initech' not found"):
        services.runs.start(request(org_slug="initech"))
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []


@pytest.mark.parametrize(
    "where",
    [
        {"pipeline": "missing"},
        {"provider": "nope"},
        {"domain": ".."},
        {"pipeline": "../fan_in"},
    ],
)
def test_an_unknown_pipeline_raises_not_found_and_records_nothing(
    services: Services, where: dict[str, str]
) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        services.runs.start(request(**where))
    assert count_runs(services.store) == 0


def test_an_invalid_pipeline_file_raises_and_records_nothing(
    services: Services, write_pipeline
) -> None:
    write_pipeline(
        "test/unit/broken",
        """\
        pipeline_id: test_broken
        name: broken
        provider: test
        domain: unit
        steps:
          - step_id: only
            ps_type: generic.noop
            config: {when: "${yesterday}"}
        """,
    )
    with pytest.raises(ConfigError, match="yesterday"):
        services.runs.start(request(pipeline="broken"))
    assert count_runs(services.store) == 0


@pytest.mark.parametrize("credential", ["Bad Cred", "../x", "a/b", "x" * 129, "key;drop"])
def test_a_malformed_credential_id_is_refused_before_recording(
    services: Services, dispatcher, credential: str
) -> None:
    # Every start path (API, CLI, beat) goes through RunService.start, which promises
    # the same checks for all of them: a malformed id (credentials.base.CREDENTIAL_ID_RE)
    # must never reach the run, the idempotency key or any row's x_credential_id.
    with pytest.raises(TerminalError, match="credential"):
        services.runs.start(request(credential_id=credential))
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []


def test_a_second_start_with_the_same_key_conflicts(services: Services, dispatcher) -> None:
    first = services.runs.start(request())
    with pytest.raises(ConflictError) as info:
        services.runs.start(request())
    assert info.value.existing_run_id == first.run_id
    assert count_runs(services.store) == 1
    assert len(dispatcher.enqueued) == 1
    # Another credential or another org is another key.
    services.runs.start(request(credential_id="default", org_slug="globex"))
    assert count_runs(services.store) == 2


def test_a_failing_enqueue_fails_the_run_and_raises_unavailable(
    services: Services, dispatcher
) -> None:
    dispatcher.fail_with = ConnectionError("redis at 10.0.0.5 refused; token=s3cr3tvalue")

    with pytest.raises(ServiceUnavailableError) as info:
        services.runs.start(request())

    assert "could not enqueue the run" in str(info.value)
    assert "s3cr3tvalue" not in str(info.value)
    (run,) = services.store.list_runs("acme")
    assert run.status == state.FAILED
    assert run.error_message.startswith("could not enqueue the run: ConnectionError: redis")
    assert "s3cr3tvalue" not in run.error_message
    assert run.ended_at is not None
    assert transitions(services, run.run_id)[-1] == (state.QUEUED, state.FAILED)
    # The key is free again once the broker is back.
    dispatcher.fail_with = None
    again = services.runs.start(request())
    assert again.status == state.QUEUED


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_moves_to_cancelled_and_revokes(services: Services, dispatcher) -> None:
    run = services.runs.start(request())

    cancelled = services.runs.cancel("acme", run.run_id)

    assert cancelled.status == state.CANCELLED
    assert cancelled.ended_at is not None
    assert dispatcher.revoked == [(run.run_id, run.plan)]
    last = services.store.transitions(run.run_id)[-1]
    assert (last.from_status, last.to_status) == (state.QUEUED, state.CANCELLED)
    assert last.reason == "cancelled by request"


def test_cancel_of_a_running_run_with_no_step_executing_ends_it(
    services: Services, dispatcher, clock
) -> None:
    run_id = services.runs.start(request()).run_id
    services.store.transition(run_id, state.RUNNING)
    assert services.runs.cancel("acme", run_id).status == state.CANCELLED
    assert [r for r, _ in dispatcher.revoked] == [run_id]
    assert services.gate.usage("acme")["usage"]["concurrent_running"] == 0


def test_cancel_of_a_run_with_an_executing_step_holds_its_key_until_the_step_stops(
    services: Services, dispatcher, clock
) -> None:
    run = services.runs.start(request())
    run_id = run.run_id
    services.store.begin_attempt(
        run_id, "a", 1, exists=False, task_id=None, worker="host:1", alive_for=60, message="go"
    )
    assert services.runs.cancel("acme", run_id).status == state.CANCELLING
    assert services.runs.cancel("acme", run_id).status == state.CANCELLING  # idempotent
    assert services.gate.usage("acme")["usage"]["concurrent_running"] == 1

    with pytest.raises(ConflictError, match="is being cancelled") as refused:
        services.runs.start(request())
    assert refused.value.existing_run_id == run_id

    services.executor.cancelled(run_id, "a", 1, "run was cancelled; the step stopped")
    assert services.store.get_run(run_id).status == state.CANCELLED
    assert services.gate.usage("acme")["usage"]["concurrent_running"] == 0
    assert services.runs.start(request()).status == state.QUEUED


@pytest.mark.parametrize("end", [state.COMPLETED, state.FAILED, state.CANCELLED])
def test_cancel_of_an_ended_run_conflicts_and_revokes_nothing(
    services: Services, dispatcher, end: str
) -> None:
    run_id = services.runs.start(request()).run_id
    if end == state.COMPLETED:
        services.store.transition(run_id, state.RUNNING)
    services.store.transition(run_id, end)
    dispatcher.revoked.clear()

    # An ended run can't be cancelled: RunNotActiveError (the API's 409 run_not_active).
    with pytest.raises(RunNotActiveError, match=f"already ended with status {end}"):
        services.runs.cancel("acme", run_id)

    assert services.store.get_run(run_id).status == end
    assert dispatcher.revoked == []


def test_cancel_of_another_orgs_run_is_not_found(services: Services, dispatcher) -> None:
    run_id = services.runs.start(request()).run_id
    with pytest.raises(NotFoundError):
        services.runs.cancel("globex", run_id)
    with pytest.raises(NotFoundError):
        services.runs.cancel("acme", "no-such-run")
    assert services.store.get_run(run_id).status == state.QUEUED
    assert dispatcher.revoked == []


# -- fail / complete ------------------------------------------------------------------------


def test_fail_twice_returns_true_then_false(services: Services) -> None:
    run_id = services.runs.start(request()).run_id

    assert services.runs.fail(run_id, "first failure") is True
    assert services.runs.fail(run_id, "second failure") is False

    run = services.store.get_run(run_id)
    assert run.status == state.FAILED
    assert run.error_message == "first failure"
    assert [t.to_status for t in services.store.transitions(run_id)].count(state.FAILED) == 1
    assert services.runs.fail("no-such-run", "x") is False


def test_complete_only_moves_a_running_run(services: Services) -> None:
    run_id = services.runs.start(request()).run_id
    assert services.runs.complete(run_id) is False  # still queued
    services.store.transition(run_id, state.RUNNING)
    assert services.runs.complete(run_id) is True
    assert services.runs.complete(run_id) is False
    assert services.runs.fail(run_id, "too late") is False
    assert services.store.get_run(run_id).status == state.COMPLETED


# -- reap -----------------------------------------------------------------------------------


def test_reap_fails_overdue_runs_and_leaves_the_rest(services: Services, clock) -> None:
    settings = services.settings  # queue_timeout 600, heartbeat_timeout 60
    t0 = clock.now

    queued = services.runs.start(request(start_date=D1, end_date=D1)).run_id
    running = services.runs.start(request(start_date=D2, end_date=D2)).run_id
    beat_at = clock.advance(5)
    services.store.begin_attempt(
        running,
        "a",
        1,
        exists=False,
        task_id=None,
        worker="host:1",
        alive_for=settings.heartbeat_timeout,
        message="started",
    )
    assert services.store.get_run(running).status == state.RUNNING
    clock.advance(500)
    later = services.runs.start(request(start_date=D1, end_date=D2)).run_id

    clock.now = t0 + timedelta(seconds=settings.queue_timeout + 1)
    reaped = services.runs.reap()

    assert sorted(reaped) == sorted([queued, running])
    q = services.store.get_run(queued)
    assert q.status == state.FAILED
    assert "waited in the queue" in q.error_message
    r = services.store.get_run(running)
    assert r.status == state.FAILED
    assert r.error_message.startswith(f"no heartbeat since {beat_at.isoformat()}")
    reason = services.store.transitions(running)[-1].reason
    assert reason.startswith("reaper: no heartbeat since")
    assert services.store.get_run(later).status == state.QUEUED

    assert services.runs.reap() == []  # nothing left overdue


def test_reap_spares_a_run_whose_heartbeat_moved_its_deadline(services: Services, clock) -> None:
    run_id = services.runs.start(request()).run_id
    services.store.transition(run_id, state.RUNNING)
    clock.advance(590)
    services.store.touch(run_id, 60)
    clock.advance(30)  # past the original queue deadline, inside the heartbeat's
    assert services.runs.reap() == []
    assert services.store.get_run(run_id).status == state.RUNNING
    clock.advance(31)
    assert services.runs.reap() == [run_id]
    assert services.store.get_run(run_id).status == state.FAILED


def test_reap_names_a_run_stuck_before_admission_finished(services: Services, clock) -> None:
    # A process that died between create_run and admit leaves a pending run behind.
    stuck = "11111111-2222-3333-4444-555555555555"
    services.store.create_run(
        {
            "run_id": stuck,
            "org_slug": "acme",
            "pipeline_id": "test_fan_in",
            "pipeline_path": "test/unit/fan_in",
            "idempotency_key": "acme|test_fan_in|default|stuck",
            "credential_id": "default",
            "start_date": D1,
            "end_date": D1,
            "params": {},
        },
        deadline_in=10,
    )
    clock.advance(11)
    assert services.runs.reap() == [stuck]
    run = services.store.get_run(stuck)
    assert run.status == state.FAILED
    assert "stayed pending past its deadline" in run.error_message


def test_reap_fails_a_run_whose_step_keeps_being_taken_over(services: Services, clock) -> None:
    run_id = services.runs.start(request()).run_id
    worker = "host:1"
    services.store.begin_attempt(
        run_id, "a", 1, exists=False, task_id=None, worker=worker, alive_for=60, message="go"
    )
    for n in range(2, 5):  # three deaths, each redelivery taking the attempt over
        claim = services.store.begin_attempt(
            run_id, "a", 1, exists=True, task_id=None, worker=f"host:{n}", alive_for=60,
            message="again", steal_from=worker,
        )  # fmt: skip
        assert claim is not None
        worker = f"host:{n}"
    assert claim.lost_workers == 3

    assert services.runs.reap() == [run_id]  # its deadline is still ahead

    run = services.store.get_run(run_id)
    assert run.status == state.FAILED
    assert run.error_message == (
        "step a failed: the worker was lost 3 times running this step; out of memory?"
    )
    assert services.gate.usage("acme")["usage"]["concurrent_running"] == 0


def test_reap_ends_a_cancelling_run_whose_stopping_step_is_gone(services: Services, clock) -> None:
    run_id = services.runs.start(request()).run_id
    services.store.begin_attempt(
        run_id, "a", 1, exists=False, task_id=None, worker="host:1", alive_for=60, message="go"
    )
    assert services.runs.cancel("acme", run_id).status == state.CANCELLING
    assert services.runs.reap() == []  # the step may still be stopping
    clock.advance(61)  # its claim lapsed: the process is gone
    assert services.runs.reap() == [run_id]
    assert services.store.get_run(run_id).status == state.CANCELLED
    assert services.store.transitions(run_id)[-1].reason.startswith("reaper: cancelled")
    assert services.gate.usage("acme")["usage"]["concurrent_running"] == 0

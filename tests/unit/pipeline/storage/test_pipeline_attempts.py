"""Step attempts in the run store: claims, take-overs, finishing, and reading back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.storage import state
from pipeline.storage.run_store import SqlRunStore
from pipeline_ops_core.errors import IllegalTransitionError

CLAIM = 30  # seconds a claim lives unless renewed


def completed(store: SqlRunStore, run_id: str) -> set[str]:
    return {step for step, _, status, _ in store.attempt_states(run_id) if status == "completed"}


@pytest.fixture
def queued_run(store: SqlRunStore, new_run: Callable[..., str]) -> str:
    run_id = new_run()
    store.transition(run_id, state.VALIDATING)
    store.transition(run_id, state.QUEUED)
    return run_id


@pytest.fixture
def begin(store: SqlRunStore, clock) -> Callable[..., datetime | None]:
    def _begin(
        run_id: str,
        worker: str,
        *,
        step_id: str = "extract",
        attempt: int = 1,
        exists: bool = True,
        steal_from: str | None = None,
    ) -> datetime | None:
        claim = store.begin_attempt(
            run_id,
            step_id,
            attempt,
            exists=exists,
            task_id=f"{run_id}:{step_id}",
            worker=worker,
            alive_for=CLAIM,
            message=f"attempt {attempt} started on {worker}",
            steal_from=steal_from,
        )
        return claim.started_at if claim is not None else None

    return _begin


def the_attempt(store: SqlRunStore, run_id: str, step_id: str = "extract") -> dict[str, Any]:
    rows = [a for a in store.step_attempts(run_id) if a.step_id == step_id]
    assert len(rows) == 1
    return rows[0]


def test_first_attempt_claims_starts_the_run_and_logs(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:1", exists=False)

    assert started == clock.now
    run = store.get_run(queued_run)
    assert run.status == state.RUNNING
    assert run.started_at == clock.now
    assert run.heartbeat_at == clock.now
    assert run.deadline_at == clock.now + timedelta(seconds=CLAIM)
    last = store.transitions(queued_run)[-1]
    assert (last.from_status, last.to_status) == (state.QUEUED, state.RUNNING)
    assert last.reason == "step extract started"
    row = the_attempt(store, queued_run)
    assert row.status == "running"
    assert row.worker == "host:1"
    assert row.claimed_until == clock.now + timedelta(seconds=CLAIM)
    assert row.rows_written == 0
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:1")]
    assert [line.message for line in store.lines(queued_run)] == ["attempt 1 started on host:1"]


def test_a_second_step_keeps_the_run_running_without_a_new_transition(
    store: SqlRunStore, queued_run: str, begin
) -> None:
    begin(queued_run, "host:1", exists=False)
    count = len(store.transitions(queued_run))
    assert begin(queued_run, "host:2", step_id="load", exists=False) is not None
    assert store.get_run(queued_run).status == state.RUNNING
    assert len(store.transitions(queued_run)) == count


def test_a_live_claim_blocks_another_worker_until_it_expires(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    lines_before = len(store.lines(queued_run))

    clock.advance(CLAIM - 1)
    assert begin(queued_run, "host:B") is None
    assert the_attempt(store, queued_run).worker == "host:A"
    assert len(store.lines(queued_run)) == lines_before  # a stood-down twin logs nothing

    clock.advance(1)  # claimed_until == now: still A's
    assert begin(queued_run, "host:B") is None

    clock.advance(1)  # expired
    taken = begin(queued_run, "host:B")
    assert taken == clock.now
    row = the_attempt(store, queued_run)
    assert row.worker == "host:B"
    assert row.status == "running"
    assert row.started_at == clock.now
    assert row.claimed_until == clock.now + timedelta(seconds=CLAIM)
    # ... and now A is the one locked out.
    assert begin(queued_run, "host:A") is None


def test_the_same_worker_may_reclaim_its_own_attempt(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    clock.advance(5)
    assert begin(queued_run, "host:A") == clock.now
    row = the_attempt(store, queued_run)
    assert row.worker == "host:A"
    assert row.started_at == clock.now


def test_renewing_the_claim_keeps_others_out(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    clock.advance(CLAIM - 5)
    store.renew_claim(queued_run, "extract", 1, "host:A", CLAIM)
    clock.advance(10)  # past the original claim, inside the renewed one
    assert begin(queued_run, "host:B") is None
    # Only the holder can renew.
    store.renew_claim(queued_run, "extract", 1, "host:B", 86400)
    assert the_attempt(store, queued_run).claimed_until < clock.now + timedelta(days=1)


def test_steal_from_takes_over_a_dead_holder_at_once(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    clock.advance(1)  # A's claim is still live
    assert begin(queued_run, "host:B", steal_from="host:C") is None  # not the holder
    assert begin(queued_run, "host:B", steal_from="host:A") == clock.now
    assert the_attempt(store, queued_run).worker == "host:B"


def test_an_ended_attempt_is_free_to_restart(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:A", exists=False)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "retrying",
        started_at=started,
        deadline_in=None,
        level="WARNING",
        message="retrying",
        error="timeout",
    )
    assert begin(queued_run, "host:B") == clock.now
    row = the_attempt(store, queued_run)
    assert (row.status, row.worker, row.error, row.ended_at) == (
        "running",
        "host:B",
        None,
        None,
    )


def test_a_twin_inserting_the_same_attempt_stands_down(
    store: SqlRunStore, queued_run: str, begin
) -> None:
    assert begin(queued_run, "host:A", exists=False) is not None
    assert begin(queued_run, "host:B", exists=False) is None
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:A")]


@pytest.mark.parametrize("end", [state.CANCELLED, state.FAILED])
def test_begin_attempt_on_an_ended_run_raises_and_writes_nothing(
    store: SqlRunStore, queued_run: str, begin, end: str
) -> None:
    store.transition(queued_run, end)
    transitions = store.transitions(queued_run)
    lines = store.lines(queued_run)

    with pytest.raises(IllegalTransitionError, match=end):
        begin(queued_run, "host:A", exists=False)

    assert store.attempt_states(queued_run) == []
    assert store.step_attempts(queued_run) == []
    assert store.get_run(queued_run).status == end
    assert store.transitions(queued_run) == transitions
    assert store.lines(queued_run) == lines


def test_begin_attempt_on_a_cancelling_run_does_not_restart_an_existing_row(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    assert store.request_cancel(queued_run, "cancelled by request") == (state.RUNNING, False)
    clock.advance(CLAIM + 1)
    with pytest.raises(IllegalTransitionError, match="cancelling"):
        begin(queued_run, "host:B")
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:A")]
    # ... nor starts another step.
    with pytest.raises(IllegalTransitionError, match="cancelling"):
        begin(queued_run, "host:B", step_id="load", exists=False)
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:A")]


def test_each_takeover_of_a_running_attempt_counts_a_lost_worker(
    store: SqlRunStore, queued_run: str, clock
) -> None:
    def claim(worker: str, exists: bool, steal_from: str | None = None):  # type: ignore[no-untyped-def]
        return store.begin_attempt(
            queued_run,
            "extract",
            1,
            exists=exists,
            task_id="t",
            worker=worker,
            alive_for=CLAIM,
            message="go",
            steal_from=steal_from,
        )

    assert claim("host:1", exists=False).lost_workers == 0
    assert claim("host:2", exists=True, steal_from="host:1").lost_workers == 1
    clock.advance(CLAIM + 1)  # host:2 died too: its claim lapsed
    assert claim("host:3", exists=True).lost_workers == 2
    assert the_attempt(store, queued_run).lost_workers == 2
    # An attempt that ended (a retry countdown) restarts without counting a loss.
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "retrying",
        started_at=None,
        deadline_in=None,
        level="WARNING",
        message="retry",
    )
    assert claim("host:4", exists=True).lost_workers == 2
    assert store.runs_losing_workers(3) == []
    assert [r.run_id for r in store.runs_losing_workers(2)] == [queued_run]


def test_a_cancelling_run_ends_when_its_last_executing_step_finishes(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    begin(queued_run, "host:B", step_id="load", exists=False)
    assert store.request_cancel(queued_run, "cancelled by request") == (state.RUNNING, False)
    assert store.settle_cancel(queued_run, "nothing stopped yet") is False

    def finish(step_id: str) -> bool:
        return store.finish_attempt(
            queued_run,
            step_id,
            1,
            state.CANCELLED,
            started_at=None,
            deadline_in=None,
            level="WARNING",
            message="stopped",
        )

    assert finish("extract") is False  # load still executes
    assert store.get_run(queued_run).status == state.CANCELLING
    assert finish("load") is True
    assert store.get_run(queued_run).status == state.CANCELLED
    moves = [(t.from_status, t.to_status) for t in store.transitions(queued_run)][-2:]
    assert moves == [(state.RUNNING, state.CANCELLING), (state.CANCELLING, state.CANCELLED)]
    assert store.transitions(queued_run)[-1].reason == "cancelled: step load stopped (cancelled)"


def test_a_cancelling_run_whose_step_process_vanished_ends_once_its_claim_lapses(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    store.request_cancel(queued_run, "cancelled by request")
    clock.advance(CLAIM - 1)
    assert store.settle_cancel(queued_run, "reaper") is False
    clock.advance(2)
    assert store.settle_cancel(queued_run, "reaper") is True
    assert store.get_run(queued_run).status == state.CANCELLED
    row = the_attempt(store, queued_run)
    assert (row.status, row.error) == (state.CANCELLED, "stopped: the run was cancelled")


def test_cancelling_a_run_between_steps_ends_it_at_once(
    store: SqlRunStore, queued_run: str, begin
) -> None:
    started = begin(queued_run, "host:A", exists=False)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "completed",
        started_at=started,
        deadline_in=60,
        level="INFO",
        message="done",
    )
    assert store.request_cancel(queued_run, "cancelled by request") == (state.RUNNING, True)
    assert store.get_run(queued_run).status == state.CANCELLED
    moves = [(t.from_status, t.to_status) for t in store.transitions(queued_run)][-2:]
    assert moves == [(state.RUNNING, state.CANCELLING), (state.CANCELLING, state.CANCELLED)]


def test_finish_attempt_records_duration_rows_metrics_and_deadline(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:A", exists=False)
    clock.advance(1.5)
    new_deadline = clock.now + timedelta(seconds=600)

    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "completed",
        started_at=started,
        deadline_in=600,
        level="INFO",
        message="completed: 42 rows written",
        rows_written=42,
        metrics={"files": 1},
    )

    row = the_attempt(store, queued_run)
    assert row.status == "completed"
    assert row.duration_ms == 1500
    assert row.ended_at == clock.now
    assert row.rows_written == 42
    assert row.metrics == {"files": 1}
    assert row.claimed_until is None
    assert row.error is None
    run = store.get_run(queued_run)
    assert run.deadline_at == new_deadline
    assert run.heartbeat_at == clock.now
    assert store.lines(queued_run)[-1].message == "completed: 42 rows written"
    assert completed(store, queued_run) == {"extract"}
    assert "extract" in completed(store, queued_run)
    assert "load" not in completed(store, queued_run)
    assert store.attempt_started_at(queued_run, "extract", 1) == started


def test_finish_attempt_redacts_the_error(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:A", exists=False)
    clock.advance(0.25)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "failed",
        started_at=started,
        deadline_in=None,
        level="ERROR",
        message="failed",
        error="401 from provider: Authorization: Bearer abc.def.ghi",
    )
    row = the_attempt(store, queued_run)
    assert row.status == "failed"
    assert row.duration_ms == 250
    assert "abc.def.ghi" not in row.error
    assert row.error.startswith("401 from provider")


def test_attempt_states_lists_every_attempt(
    store: SqlRunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:A", exists=False)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "retrying",
        started_at=started,
        deadline_in=None,
        level="WARNING",
        message="retry",
    )
    begin(queued_run, "host:A", attempt=2, exists=False)
    begin(queued_run, "host:B", step_id="load", exists=False)
    assert sorted(store.attempt_states(queued_run)) == [
        ("extract", 1, "retrying", "host:A"),
        ("extract", 2, "running", "host:A"),
        ("load", 1, "running", "host:B"),
    ]
    assert completed(store, queued_run) == set()

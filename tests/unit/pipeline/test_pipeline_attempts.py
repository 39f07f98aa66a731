"""Step attempts in the run store: claims, take-overs, finishing, and reading back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from errors import IllegalTransitionError
from pipeline import state
from pipeline.store import RunStore

CLAIM = 30  # seconds a claim lives unless renewed


@pytest.fixture
def queued_run(store: RunStore, new_run: Callable[..., str]) -> str:
    run_id = new_run()
    store.transition(run_id, state.VALIDATING)
    store.transition(run_id, state.QUEUED)
    return run_id


@pytest.fixture
def begin(store: RunStore, clock) -> Callable[..., datetime | None]:
    def _begin(
        run_id: str,
        worker: str,
        *,
        step_id: str = "extract",
        attempt: int = 1,
        exists: bool = True,
        steal_from: str | None = None,
    ) -> datetime | None:
        return store.begin_attempt(
            run_id,
            step_id,
            attempt,
            exists=exists,
            task_id=f"{run_id}:{step_id}",
            worker=worker,
            claim_until=clock.now + timedelta(seconds=CLAIM),
            deadline_at=clock.now + timedelta(seconds=120),
            message=f"attempt {attempt} started on {worker}",
            steal_from=steal_from,
        )

    return _begin


def the_attempt(store: RunStore, run_id: str, step_id: str = "extract") -> dict[str, Any]:
    rows = [a for a in store.step_attempts(run_id) if a["step_id"] == step_id]
    assert len(rows) == 1
    return rows[0]


def test_first_attempt_claims_starts_the_run_and_logs(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:1", exists=False)

    assert started == clock.now
    run = store.get_run(queued_run)
    assert run["status"] == state.RUNNING
    assert run["started_at"] == clock.now
    assert run["heartbeat_at"] == clock.now
    assert run["deadline_at"] == clock.now + timedelta(seconds=120)
    last = store.transitions(queued_run)[-1]
    assert (last["from_status"], last["to_status"]) == (state.QUEUED, state.RUNNING)
    assert last["reason"] == "step extract started"
    row = the_attempt(store, queued_run)
    assert row["status"] == "running"
    assert row["worker"] == "host:1"
    assert row["claimed_until"] == clock.now + timedelta(seconds=CLAIM)
    assert row["rows_written"] == 0
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:1")]
    assert [line["message"] for line in store.lines(queued_run)] == ["attempt 1 started on host:1"]


def test_a_second_step_keeps_the_run_running_without_a_new_transition(
    store: RunStore, queued_run: str, begin
) -> None:
    begin(queued_run, "host:1", exists=False)
    count = len(store.transitions(queued_run))
    assert begin(queued_run, "host:2", step_id="load", exists=False) is not None
    assert store.get_run(queued_run)["status"] == state.RUNNING
    assert len(store.transitions(queued_run)) == count


def test_a_live_claim_blocks_another_worker_until_it_expires(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    lines_before = len(store.lines(queued_run))

    clock.advance(CLAIM - 1)
    assert begin(queued_run, "host:B") is None
    assert the_attempt(store, queued_run)["worker"] == "host:A"
    assert len(store.lines(queued_run)) == lines_before  # a stood-down twin logs nothing

    clock.advance(1)  # claimed_until == now: still A's
    assert begin(queued_run, "host:B") is None

    clock.advance(1)  # expired
    taken = begin(queued_run, "host:B")
    assert taken == clock.now
    row = the_attempt(store, queued_run)
    assert row["worker"] == "host:B"
    assert row["status"] == "running"
    assert row["started_at"] == clock.now
    assert row["claimed_until"] == clock.now + timedelta(seconds=CLAIM)
    # ... and now A is the one locked out.
    assert begin(queued_run, "host:A") is None


def test_the_same_worker_may_reclaim_its_own_attempt(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    clock.advance(5)
    assert begin(queued_run, "host:A") == clock.now
    row = the_attempt(store, queued_run)
    assert row["worker"] == "host:A"
    assert row["started_at"] == clock.now


def test_renewing_the_claim_keeps_others_out(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    clock.advance(CLAIM - 5)
    store.renew_claim(queued_run, "extract", 1, "host:A", clock.now + timedelta(seconds=CLAIM))
    clock.advance(10)  # past the original claim, inside the renewed one
    assert begin(queued_run, "host:B") is None
    # Only the holder can renew.
    store.renew_claim(queued_run, "extract", 1, "host:B", clock.now + timedelta(days=1))
    assert the_attempt(store, queued_run)["claimed_until"] < clock.now + timedelta(days=1)


def test_steal_from_takes_over_a_dead_holder_at_once(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    clock.advance(1)  # A's claim is still live
    assert begin(queued_run, "host:B", steal_from="host:C") is None  # not the holder
    assert begin(queued_run, "host:B", steal_from="host:A") == clock.now
    assert the_attempt(store, queued_run)["worker"] == "host:B"


def test_an_ended_attempt_is_free_to_restart(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    started = begin(queued_run, "host:A", exists=False)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "retrying",
        started_at=started,
        deadline_at=None,
        level="WARNING",
        message="retrying",
        error="timeout",
    )
    assert begin(queued_run, "host:B") == clock.now
    row = the_attempt(store, queued_run)
    assert (row["status"], row["worker"], row["error"], row["ended_at"]) == (
        "running",
        "host:B",
        None,
        None,
    )


def test_a_twin_inserting_the_same_attempt_stands_down(
    store: RunStore, queued_run: str, begin
) -> None:
    assert begin(queued_run, "host:A", exists=False) is not None
    assert begin(queued_run, "host:B", exists=False) is None
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:A")]


@pytest.mark.parametrize("end", [state.CANCELLED, state.FAILED])
def test_begin_attempt_on_an_ended_run_raises_and_writes_nothing(
    store: RunStore, queued_run: str, begin, end: str
) -> None:
    store.transition(queued_run, end)
    transitions = store.transitions(queued_run)
    lines = store.lines(queued_run)

    with pytest.raises(IllegalTransitionError, match=end):
        begin(queued_run, "host:A", exists=False)

    assert store.attempt_states(queued_run) == []
    assert store.step_attempts(queued_run) == []
    assert store.get_run(queued_run)["status"] == end
    assert store.transitions(queued_run) == transitions
    assert store.lines(queued_run) == lines


def test_begin_attempt_on_a_cancelled_run_does_not_restart_an_existing_row(
    store: RunStore, queued_run: str, begin, clock
) -> None:
    begin(queued_run, "host:A", exists=False)
    store.transition(queued_run, state.CANCELLED)
    clock.advance(CLAIM + 1)
    with pytest.raises(IllegalTransitionError):
        begin(queued_run, "host:B")
    assert store.attempt_states(queued_run) == [("extract", 1, "running", "host:A")]


def test_finish_attempt_records_duration_rows_metrics_and_deadline(
    store: RunStore, queued_run: str, begin, clock
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
        deadline_at=new_deadline,
        level="INFO",
        message="completed: 42 rows written",
        rows_written=42,
        metrics={"files": 1},
    )

    row = the_attempt(store, queued_run)
    assert row["status"] == "completed"
    assert row["duration_ms"] == 1500
    assert row["ended_at"] == clock.now
    assert row["rows_written"] == 42
    assert row["metrics"] == {"files": 1}
    assert row["claimed_until"] is None
    assert row["error"] is None
    run = store.get_run(queued_run)
    assert run["deadline_at"] == new_deadline
    assert run["heartbeat_at"] == clock.now
    assert store.lines(queued_run)[-1]["message"] == "completed: 42 rows written"
    assert store.completed_steps(queued_run) == {"extract"}
    assert store.step_completed(queued_run, "extract")
    assert not store.step_completed(queued_run, "load")
    assert store.attempt_started_at(queued_run, "extract", 1) == started


def test_finish_attempt_redacts_the_error(store: RunStore, queued_run: str, begin, clock) -> None:
    started = begin(queued_run, "host:A", exists=False)
    clock.advance(0.25)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "failed",
        started_at=started,
        deadline_at=None,
        level="ERROR",
        message="failed",
        error="401 from provider: Authorization: Bearer abc.def.ghi",
    )
    row = the_attempt(store, queued_run)
    assert row["status"] == "failed"
    assert row["duration_ms"] == 250
    assert "abc.def.ghi" not in row["error"]
    assert row["error"].startswith("401 from provider")


def test_attempt_states_lists_every_attempt(store: RunStore, queued_run: str, begin, clock) -> None:
    started = begin(queued_run, "host:A", exists=False)
    store.finish_attempt(
        queued_run,
        "extract",
        1,
        "retrying",
        started_at=started,
        deadline_at=None,
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
    assert store.completed_steps(queued_run) == set()

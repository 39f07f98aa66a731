"""The run state machine through SqlRunStore.transition, on a real SQLite metadata DB."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.storage import state
from pipeline.storage.run_store import SqlRunStore
from pipeline_ops_core.errors import IllegalTransitionError

ALL = list(state.ALL)

# How to walk a fresh (pending) run to each status with legal moves only.
PATH_TO: dict[str, list[str]] = {
    state.PENDING: [],
    state.VALIDATING: [state.VALIDATING],
    state.QUEUED: [state.VALIDATING, state.QUEUED],
    state.RUNNING: [state.VALIDATING, state.QUEUED, state.RUNNING],
    state.CANCELLING: [state.VALIDATING, state.QUEUED, state.RUNNING, state.CANCELLING],
    state.COMPLETED: [state.VALIDATING, state.QUEUED, state.RUNNING, state.COMPLETED],
    state.FAILED: [state.FAILED],
    state.CANCELLED: [state.CANCELLED],
}

LEGAL = sorted(
    (from_status, to_status)
    for to_status, sources in state.ALLOWED_FROM.items()
    for from_status in sources
)
ILLEGAL = [
    (from_status, to_status)
    for from_status in ALL
    for to_status in ALL
    if from_status != to_status and from_status not in state.ALLOWED_FROM.get(to_status, ())
]


def run_at(store: SqlRunStore, new_run: Callable[..., str], status: str) -> str:
    run_id = new_run()
    for step in PATH_TO[status]:
        assert store.transition(run_id, step, f"to {step}") is True
    assert store.get_run(run_id).status == status
    return run_id


def test_the_table_matches_the_documented_flow() -> None:
    # pending -> validating -> queued -> running -> completed | failed | cancelled;
    # a running run is cancelled through cancelling (its executing step must stop first),
    # and a cancelling run only ever ends cancelled.
    assert set(LEGAL) == {
        (state.PENDING, state.VALIDATING),
        (state.VALIDATING, state.QUEUED),
        (state.QUEUED, state.RUNNING),
        (state.RUNNING, state.COMPLETED),
        (state.RUNNING, state.CANCELLING),
        (state.CANCELLING, state.CANCELLED),
        *((s, state.FAILED) for s in state.ACTIVE - {state.CANCELLING}),
        *((s, state.CANCELLED) for s in state.ACTIVE - {state.RUNNING}),
    }
    assert state.TERMINAL.isdisjoint(state.ACTIVE)
    assert set(ALL) == state.TERMINAL | state.ACTIVE


def test_a_new_run_is_pending_with_one_transition(
    store: SqlRunStore, new_run: Callable[..., str]
) -> None:
    run_id = new_run()
    assert store.get_run(run_id).status == state.PENDING
    rows = store.transitions(run_id)
    assert [(r.from_status, r.to_status) for r in rows] == [(None, state.PENDING)]


@pytest.mark.parametrize(("from_status", "to_status"), LEGAL)
def test_every_legal_move_works_and_records_a_transition(
    store: SqlRunStore, new_run: Callable[..., str], clock, from_status: str, to_status: str
) -> None:
    run_id = run_at(store, new_run, from_status)
    before = len(store.transitions(run_id))
    clock.advance(5)

    assert store.transition(run_id, to_status, "because the test says so") is True

    run = store.get_run(run_id)
    assert run.status == to_status
    rows = store.transitions(run_id)
    assert len(rows) == before + 1
    last = rows[-1]
    assert (last.from_status, last.to_status) == (from_status, to_status)
    assert last.reason == "because the test says so"
    assert last.at == clock.now
    if to_status == state.RUNNING:
        assert run.started_at == clock.now
    if to_status in state.TERMINAL:
        assert run.ended_at == clock.now
    else:
        assert run.ended_at is None


@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL)
def test_every_illegal_move_raises_and_changes_nothing(
    store: SqlRunStore, new_run: Callable[..., str], from_status: str, to_status: str
) -> None:
    run_id = run_at(store, new_run, from_status)
    before_run = store.get_run(run_id)
    before_rows = store.transitions(run_id)

    with pytest.raises(IllegalTransitionError):
        store.transition(run_id, to_status, "nope", error_message="should not be written")

    after = store.get_run(run_id)
    assert after == before_run
    assert after.error_message is None
    assert store.transitions(run_id) == before_rows


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (state.COMPLETED, state.RUNNING),
        (state.FAILED, state.COMPLETED),
        (state.PENDING, state.RUNNING),
        (state.CANCELLED, state.QUEUED),
        (state.QUEUED, state.COMPLETED),
    ],
)
def test_named_illegal_moves_say_what_was_refused(
    store: SqlRunStore, new_run: Callable[..., str], from_status: str, to_status: str
) -> None:
    run_id = run_at(store, new_run, from_status)
    with pytest.raises(IllegalTransitionError, match=f"{from_status} -> {to_status}"):
        store.transition(run_id, to_status)
    assert store.get_run(run_id).status == from_status


@pytest.mark.parametrize("status", sorted(state.ALLOWED_FROM))
def test_moving_to_the_current_status_is_a_no_op(
    store: SqlRunStore, new_run: Callable[..., str], status: str
) -> None:
    run_id = run_at(store, new_run, status)
    before_run = store.get_run(run_id)
    before_rows = store.transitions(run_id)

    assert store.transition(run_id, status, "again") is False

    assert store.get_run(run_id) == before_run
    assert store.transitions(run_id) == before_rows


def test_pending_is_never_a_target(store: SqlRunStore, new_run: Callable[..., str]) -> None:
    # `pending` is only entered by create_run, so it is not in the table at all.
    run_id = new_run()
    with pytest.raises(IllegalTransitionError):
        store.transition(run_id, state.PENDING)
    assert len(store.transitions(run_id)) == 1


@pytest.mark.parametrize("bogus", ["done", "RUNNING", "", "cancelled "])
def test_an_unknown_status_raises_and_changes_nothing(
    store: SqlRunStore, new_run: Callable[..., str], bogus: str
) -> None:
    run_id = run_at(store, new_run, state.QUEUED)
    with pytest.raises(IllegalTransitionError, match="unknown status"):
        store.transition(run_id, bogus)
    assert store.get_run(run_id).status == state.QUEUED
    assert len(store.transitions(run_id)) == 3


def test_a_missing_run_raises(store: SqlRunStore) -> None:
    with pytest.raises(IllegalTransitionError, match="does not exist"):
        store.transition("no-such-run", state.FAILED)


def test_fields_are_written_with_the_move_and_error_messages_redacted(
    store: SqlRunStore, new_run: Callable[..., str]
) -> None:
    run_id = run_at(store, new_run, state.RUNNING)
    secret = "sk-live0123456789abcdef"
    assert store.transition(
        run_id, state.FAILED, f"boom with {secret}", error_message=f"provider said {secret}"
    )
    run = store.get_run(run_id)
    assert run.status == state.FAILED
    assert secret not in run.error_message
    assert run.error_message.startswith("provider said ")
    assert secret not in store.transitions(run_id)[-1].reason


def test_two_terminal_moves_race_only_one_wins(
    store: SqlRunStore, new_run: Callable[..., str]
) -> None:
    run_id = run_at(store, new_run, state.RUNNING)
    assert store.transition(run_id, state.COMPLETED) is True
    with pytest.raises(IllegalTransitionError):
        store.transition(run_id, state.FAILED, error_message="late")
    run = store.get_run(run_id)
    assert run.status == state.COMPLETED
    assert run.error_message is None
    assert [r.to_status for r in store.transitions(run_id)][-1] == state.COMPLETED

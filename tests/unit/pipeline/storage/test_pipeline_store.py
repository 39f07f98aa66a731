"""SqlRunStore: create_run's idempotency guard and list_runs' keyset pagination."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.storage import state
from pipeline.storage.run_store import SqlRunStore
from pipeline_ops_core.errors import ConflictError
from tests.support.records import count_runs

KEY = "acme|test_pipe|default|2026-01-01|2026-01-01"


def end_as(store: SqlRunStore, run_id: str, status: str) -> None:
    if status == state.COMPLETED:
        for step in (state.VALIDATING, state.QUEUED, state.RUNNING, state.COMPLETED):
            store.transition(run_id, step)
    else:
        store.transition(run_id, status)
    assert store.get_run(run_id).status == status


def test_a_second_active_run_with_the_same_key_conflicts(
    store: SqlRunStore, new_run: Callable[..., str]
) -> None:
    first = new_run(key=KEY)
    with pytest.raises(ConflictError) as info:
        new_run(key=KEY)
    assert info.value.existing_run_id == first
    assert count_runs(store) == 1
    assert store.active_run(KEY)[0] == first


@pytest.mark.parametrize("status", [state.VALIDATING, state.QUEUED, state.RUNNING])
def test_the_key_stays_held_while_the_run_is_active(
    store: SqlRunStore, new_run: Callable[..., str], status: str
) -> None:
    first = new_run(key=KEY)
    for step in (state.VALIDATING, state.QUEUED, state.RUNNING):
        store.transition(first, step)
        if step == status:
            break
    with pytest.raises(ConflictError) as info:
        new_run(key=KEY)
    assert info.value.existing_run_id == first
    assert count_runs(store) == 1


@pytest.mark.parametrize("status", [state.COMPLETED, state.FAILED, state.CANCELLED])
def test_the_key_is_free_again_once_the_run_ended(
    store: SqlRunStore, new_run: Callable[..., str], status: str
) -> None:
    first = new_run(key=KEY)
    end_as(store, first, status)

    second = new_run(key=KEY)

    assert second != first
    assert store.get_run(second).status == state.PENDING
    assert store.active_run(KEY)[0] == second
    assert count_runs(store) == 2
    # ... and the new run holds it in turn.
    with pytest.raises(ConflictError) as info:
        new_run(key=KEY)
    assert info.value.existing_run_id == second


def test_different_keys_do_not_conflict(store: SqlRunStore, new_run: Callable[..., str]) -> None:
    new_run(key=KEY)
    new_run(key=KEY.replace("2026-01-01|2026-01-01", "2026-01-02|2026-01-02"))
    new_run(key=KEY.replace("default", "other"))
    assert count_runs(store) == 3


def test_create_run_writes_the_row_and_its_first_transition(
    store: SqlRunStore, new_run: Callable[..., str], clock
) -> None:
    run_id = new_run(key=KEY, params={"k": "v"}, trigger="cli")
    run = store.get_run(run_id)
    assert run.status == state.PENDING
    assert run.created_at == clock.now
    assert run.params == {"k": "v"}
    assert run.trigger == "cli"
    assert store.get_run(run_id, org_slug="acme").run_id == run_id
    assert store.get_run(run_id, org_slug="globex") is None


# -- list_runs ------------------------------------------------------------------------------


@pytest.fixture
def history(store: SqlRunStore, new_run: Callable[..., str], clock) -> list[str]:
    """Seven acme runs (the last two created in the same instant) and one globex run;
    returns the acme ids newest first, as list_runs must order them."""
    made: list[tuple[object, str]] = []
    for i in range(5):
        clock.advance(60)
        pipeline_id = "pipe_b" if i % 2 else "pipe_a"
        made.append((clock.now, new_run(pipeline_id=pipeline_id, run_id=f"run-{i}")))
    clock.advance(60)
    # Same created_at: the run_id breaks the tie.
    made.append((clock.now, new_run(pipeline_id="pipe_a", run_id="run-z")))
    made.append((clock.now, new_run(pipeline_id="pipe_a", run_id="run-y")))
    new_run(org="globex", run_id="globex-run")
    store.transition("run-1", state.CANCELLED)
    store.transition("run-3", state.CANCELLED)
    return [run_id for _, run_id in sorted(made, key=lambda m: (m[0], m[1]), reverse=True)]


def page_through(store: SqlRunStore, size: int, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        rows = store.list_runs("acme", limit=size, cursor=cursor, **filters)
        if not rows:
            return pages
        pages.append([r.run_id for r in rows])
        last = rows[-1]
        cursor = (last.created_at, last.run_id)


def test_list_runs_is_newest_first_and_scoped_to_the_org(
    store: SqlRunStore, history: list[str]
) -> None:
    rows = store.list_runs("acme")
    assert [r.run_id for r in rows] == history
    assert history[:2] == ["run-z", "run-y"]
    assert "globex-run" not in history
    assert [r.run_id for r in store.list_runs("globex")] == ["globex-run"]
    assert all(r.plan is None for r in rows)
    created = [r.created_at for r in rows]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_keyset_pages_cover_every_run_once_in_order(
    store: SqlRunStore, history: list[str], size: int
) -> None:
    pages = page_through(store, size)
    assert all(len(page) <= size for page in pages)
    assert [run_id for page in pages for run_id in page] == history


def test_a_cursor_inside_a_tie_continues_with_the_other_run(
    store: SqlRunStore, history: list[str]
) -> None:
    first = store.list_runs("acme", limit=1)
    assert [r.run_id for r in first] == ["run-z"]
    rest = store.list_runs("acme", limit=1, cursor=(first[0].created_at, "run-z"))
    assert [r.run_id for r in rest] == ["run-y"]


def test_list_runs_filters_by_status(store: SqlRunStore, history: list[str]) -> None:
    cancelled = store.list_runs("acme", status=state.CANCELLED)
    assert [r.run_id for r in cancelled] == ["run-3", "run-1"]
    pending = page_through(store, 2, status=state.PENDING)
    assert [rid for page in pending for rid in page] == [
        r for r in history if r not in ("run-1", "run-3")
    ]
    assert store.list_runs("acme", status=state.COMPLETED) == []


def test_list_runs_filters_by_pipeline_and_status_together(
    store: SqlRunStore, history: list[str]
) -> None:
    b_runs = [r.run_id for r in store.list_runs("acme", pipeline_id="pipe_b")]
    assert b_runs == ["run-3", "run-1"]
    a_runs = [rid for page in page_through(store, 2, pipeline_id="pipe_a") for rid in page]
    assert a_runs == ["run-z", "run-y", "run-4", "run-2", "run-0"]
    both = store.list_runs("acme", pipeline_id="pipe_a", status=state.CANCELLED)
    assert both == []
    assert [r.run_id for r in store.list_runs("acme", pipeline_id="nope")] == []

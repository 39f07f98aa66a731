"""POST /pipelines/rerun/{org}/{run_id}: a new run of the same key, whole or from the
failed step (the completed steps reused, not enqueued)."""

from __future__ import annotations

from flask.testing import FlaskClient

from pipeline.bootstrap import Services
from pipeline.runs.service import reuse_completed
from pipeline.storage.records import PlannedStep, RunPlan
from tests.support.api import RUN_URL, assert_problem
from tests.support.doubles import RecordingDispatcher
from tests.support.records import count_runs


def run_steps(services: Services, run_id: str, done: list[str], failed: str | None) -> None:
    """Record the attempts a worker would have: `done` completed, then `failed` failed."""
    store = services.store
    for step in [*done, *([failed] if failed else [])]:
        claim = store.begin_attempt(
            run_id, step, 1, exists=False, task_id=None, worker="w", alive_for=60, message="go"
        )
        assert claim is not None
        ok = step != failed
        store.finish_attempt(
            run_id,
            step,
            1,
            "completed" if ok else "failed",
            started_at=claim.started_at,
            deadline_in=60,
            level="INFO" if ok else "ERROR",
            message="done" if ok else "boom",
            error=None if ok else "boom",
        )
    if failed:
        services.runs.fail(run_id, f"step {failed} failed: boom")


def started(client: FlaskClient, auth: dict[str, str]) -> str:
    response = client.post(RUN_URL, json={"start_date": "2026-01-01"}, headers=auth)
    assert response.status_code == 202, response.text
    return str(response.json["run_id"])  # type: ignore[index]


def test_rerun_from_failed_reuses_completed_steps(
    client: FlaskClient,
    services: Services,
    dispatcher: RecordingDispatcher,
    auth: dict[str, str],
) -> None:
    first = started(client, auth)
    run_steps(services, first, ["extract", "noop_a", "noop_b"], failed="unify")
    response = client.post(
        f"/pipelines/rerun/acme/{first}", json={"from_failed": True}, headers=auth
    )
    assert response.status_code == 202, response.text
    new_id = response.json["run_id"]  # type: ignore[index]
    new = services.store.get_run(new_id)
    old = services.store.get_run(first)
    assert new is not None and old is not None
    assert new.idempotency_key == old.idempotency_key and new.trigger == "rerun"
    assert new.plan is not None
    assert new.plan.reused == {"extract": first, "noop_a": first, "noop_b": first}
    assert new.plan.rerun_of == first and new.plan.levels == (("unify",),)
    enqueued = dict(dispatcher.enqueued)[new_id]
    assert enqueued.levels == (("unify",),)  # only the failed step is sent to the workers
    status = client.get(f"/pipelines/status/acme/{new_id}", headers=auth).json
    assert [(s["step_id"], s["status"]) for s in status["steps"]] == [  # type: ignore[index]
        ("extract", "reused"),
        ("noop_a", "reused"),
        ("noop_b", "reused"),
        ("unify", "pending"),
    ]


def test_a_plain_rerun_runs_every_step(
    client: FlaskClient, services: Services, auth: dict[str, str]
) -> None:
    first = started(client, auth)
    run_steps(services, first, ["extract"], failed="noop_a")
    response = client.post(f"/pipelines/rerun/acme/{first}", headers=auth)
    assert response.status_code == 202
    new = services.store.get_run(response.json["run_id"])  # type: ignore[index]
    assert new is not None and new.plan is not None
    assert new.plan.reused == {} and new.plan.rerun_of is None
    assert "reused" not in new.plan.to_json()  # a plain re-run stores the plain plan's keys
    assert [s for level in new.plan.levels for s in level] == [
        "extract",
        "noop_a",
        "noop_b",
        "unify",
    ]


def test_rerun_from_failed_of_a_run_that_did_not_fail_is_refused(
    client: FlaskClient, services: Services, auth: dict[str, str]
) -> None:
    active = started(client, auth)
    before = count_runs(services.store, "acme")
    response = client.post(
        f"/pipelines/rerun/acme/{active}", json={"from_failed": True}, headers=auth
    )
    body = assert_problem(response, 422, "nothing_to_rerun")
    assert "only a failed or cancelled run" in body["detail"]
    assert count_runs(services.store, "acme") == before


def test_rerun_of_another_orgs_run_is_404(
    client: FlaskClient,
    services: Services,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    theirs = started(client, auth)
    before = count_runs(services.store)
    response = client.post(f"/pipelines/rerun/globex/{theirs}", headers=other_auth)
    assert_problem(response, 404, "not_found")
    bad = client.post(
        f"/pipelines/rerun/acme/{theirs}", json={"from_failed": "yes please"}, headers=auth
    )
    assert_problem(bad, 422, "validation_error")
    assert count_runs(services.store) == before


def plan(levels: list[list[str]], deps: dict[str, list[str]]) -> RunPlan:
    steps = {
        s: PlannedStep("generic.noop", {}, tuple(deps.get(s, [])), 60, 90, 1, 0.0)
        for level in levels
        for s in level
    }
    return RunPlan("p", "d", tuple(tuple(level) for level in levels), steps)


def test_a_step_after_one_that_runs_again_is_not_reused() -> None:
    # a -> (b, c) -> d; a and c completed, b failed: b and d run again, c is reused only
    # because its own input (a) is reused.
    base = plan([["a"], ["b", "c"], ["d"]], {"b": ["a"], "c": ["a"], "d": ["b", "c"]})
    out = reuse_completed(base, "r1", {"a": "r1", "c": "r1", "d": "r0"})
    assert out.reused == {"a": "r1", "c": "r1"} and out.rerun_of == "r1"
    assert out.levels == (("b",), ("d",))
    assert set(out.steps) == {"a", "b", "c", "d"}
    # The plan JSON round-trips the keys a re-run stores.
    assert out.to_json()["reused"] == {"a": "r1", "c": "r1"}
    assert out.to_json()["rerun_of"] == "r1"
    assert RunPlan.from_json(out.to_json()) == out
    # A step reused by the source itself is reused from the run that really ran it.
    again = reuse_completed(base, "r2", {"a": "r1", "c": "r1", "b": "r2"})
    assert again.reused == {"a": "r1", "b": "r2", "c": "r1"} and again.levels == (("d",),)

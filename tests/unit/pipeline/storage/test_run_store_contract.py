"""The SQL run store implements the RunStore contract, method for method.

A Protocol is only checked by a type checker; this test keeps the contract honest without
one: every method the contract declares exists on SqlRunStore with the same parameters
(names, kinds, defaults), and every public method of SqlRunStore is in the contract, so a
caller typed against RunStore can use all of it and nothing else.
"""

from __future__ import annotations

import inspect
from datetime import date

import pytest

from pipeline.storage.base import RunStore
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.records import RunPlan, RunRecord
from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.state import CANCELLED, PENDING

CONTRACT = sorted(
    name
    for name, member in vars(RunStore).items()
    if not name.startswith("_") and inspect.isfunction(member)
)
# Set up by the constructor, not part of what callers use through the contract.
NOT_IN_CONTRACT = {"engine", "db_time"}


@pytest.mark.parametrize("name", CONTRACT)
def test_every_contract_method_has_the_same_signature_on_the_sql_store(name: str) -> None:
    declared = inspect.signature(getattr(RunStore, name))
    implemented = inspect.signature(getattr(SqlRunStore, name))
    assert [(p.name, p.kind, p.default) for p in implemented.parameters.values()] == [
        (p.name, p.kind, p.default) for p in declared.parameters.values()
    ]
    assert implemented.return_annotation == declared.return_annotation


def test_the_sql_store_has_no_public_method_outside_the_contract() -> None:
    public = {
        name
        for name, member in vars(SqlRunStore).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert public - set(CONTRACT) == set()
    assert set(RunStore.__annotations__) == {"clock", "text_limit"}
    assert NOT_IN_CONTRACT.isdisjoint(CONTRACT)


def test_records_come_back_typed_and_the_plan_round_trips_through_its_column(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    store: RunStore = SqlRunStore(make_engine(url))
    store.create_org("acme", "Acme", "pok_acme", "h" * 64)
    created = store.create_run(
        {
            "run_id": "run-1",
            "org_slug": "acme",
            "pipeline_id": "p",
            "pipeline_path": "test/unit/p",
            "idempotency_key": "k",
            "credential_id": "default",
            "start_date": date(2026, 1, 1),
            "end_date": date(2026, 1, 2),
            "params": {"team": "ml"},
        }
    )
    assert isinstance(created, RunRecord) and created.status == PENDING and created.plan is None
    plan = RunPlan.from_json(
        {
            "pipeline_id": "p",
            "dataset": "acme_dev",
            "levels": [["a", "b"], ["c"]],
            "steps": {
                s: {
                    "ps_type": "generic.noop",
                    "config": {"n": i},
                    "depends_on": ["a", "b"] if s == "c" else [],
                    "timeout_seconds": 30,
                    "time_limit": 60,
                    "max_attempts": 2,
                    "backoff_seconds": 1.5,
                }
                for i, s in enumerate("abc")
            },
        }
    )
    store.admit("run-1", store.clock(), plan, deadline_in=60)
    run = store.get_run("run-1")
    assert run is not None and run.plan == plan
    assert run.plan.steps["c"].depends_on == ("a", "b")
    assert run.plan.step_ids() == ["a", "b", "c"]
    assert RunPlan.from_json(plan.to_json()) == plan
    assert (run.start_date, run.end_date) == (date(2026, 1, 1), date(2026, 1, 2))
    assert run.created_at.tzinfo is not None
    # Listings leave the plan unread; the rest of the record is the same.
    (listed,) = store.list_runs("acme")
    assert listed.plan is None and listed.run_id == "run-1" and listed.params == {"team": "ml"}
    store.request_cancel("run-1", "test")
    assert [(t.from_status, t.to_status) for t in store.transitions("run-1")][-1] == (
        "queued",
        CANCELLED,
    )

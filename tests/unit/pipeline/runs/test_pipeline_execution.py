"""StepExecutor without Celery: load + run against a real SQLite DB and DuckDB file."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from pipeline.bootstrap import Services
from pipeline.runs.execution import DependencyPending, StepOutcome
from pipeline.runs.service import RunRequest
from pipeline.storage import state
from pipeline_ops_core.errors import TerminalError
from warehouse.base import LINEAGE_FIELDS, LINEAGE_NAMES, TableRef
from warehouse.duckdb import DuckDBWarehouse

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)

CSV = """\
usage_date,model,input_tokens,x_org_slug
2026-01-01,gpt-4o-mini,100,evil
2026-01-01,gpt-4.1,200,evil
2026-01-02,gpt-4o-mini,300,evil
2026-01-02,gpt-4.1,400,evil
2026-01-03,gpt-4.1,999,evil
"""

PIPELINE = """\
pipeline_id: test_exec
name: Executor test pipeline
provider: test
domain: unit
steps:
  - step_id: extract
    ps_type: generic.file_extract
    config: {{path: "{path}", destination_table: usage_raw, date_column: usage_date}}
  - step_id: done
    ps_type: generic.noop
    depends_on: [extract]
"""


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "usage.csv"
    path.parent.mkdir()
    path.write_text(CSV)
    return path


@pytest.fixture
def exec_pipeline(write_pipeline, csv_path: Path) -> None:
    write_pipeline("test/unit/exec", PIPELINE.format(path=csv_path))


def start(services: Services, pipeline: str = "exec", **kw: Any) -> dict[str, Any]:
    kw = {"start_date": D1, "end_date": D2, **kw}
    req = RunRequest("acme", "test", "unit", pipeline, **kw)
    return services.runs.start(req)


def run_step(services: Services, run_id: str, step_id: str, attempt: int = 1) -> StepOutcome:
    run, _spec = services.executor.load(run_id, step_id)
    return services.executor.run(run, step_id, attempt, task_id=f"{run_id}:{step_id}")


def read_rows(services: Services, table: str) -> pa.Table:
    path = services.settings.warehouse_url.removeprefix("duckdb://")
    con = duckdb.connect(path, read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(f"SELECT * FROM acme_dev.{table} ORDER BY input_tokens").to_arrow_table()
    finally:
        con.close()


def column_types(services: Services, table: str) -> dict[str, tuple[str, str]]:
    path = services.settings.warehouse_url.removeprefix("duckdb://")
    con = duckdb.connect(path, read_only=True)
    try:
        rows = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'acme_dev' AND table_name = ?",
            [table],
        ).fetchall()
    finally:
        con.close()
    return {name: (dtype, nullable) for name, dtype, nullable in rows}


def test_a_step_writes_lineage_stamped_rows(services: Services, exec_pipeline: None, clock) -> None:
    run_id = start(services).run_id

    outcome = run_step(services, run_id, "extract")

    assert outcome.status == "completed"
    assert outcome.rows_written == 4  # 2026-01-03 is outside the run's range
    assert outcome.tables == ["acme_dev.usage_raw"]
    rows = read_rows(services, "usage_raw")
    assert rows.num_rows == 4
    assert rows.column_names == ["usage_date", "model", "input_tokens", *LINEAGE_NAMES]
    data = rows.to_pydict()
    assert data["input_tokens"] == [100, 200, 300, 400]
    assert data["x_org_slug"] == ["acme"] * 4  # the file's own x_org_slug is overridden
    assert data["x_pipeline_id"] == ["test_exec"] * 4
    assert data["x_credential_id"] == ["default"] * 4
    assert data["x_pipeline_run_date"] == [D1, D1, D2, D2]
    assert data["x_run_id"] == [run_id] * 4
    assert data["x_ingested_at"] == [clock.now] * 4
    assert data["x_ingestion_date"] == [clock.now.date()] * 4

    types = column_types(services, "usage_raw")
    assert {name: types[name] for name in LINEAGE_NAMES} == {
        "x_org_slug": ("VARCHAR", "NO"),
        "x_pipeline_id": ("VARCHAR", "NO"),
        "x_credential_id": ("VARCHAR", "NO"),
        "x_pipeline_run_date": ("DATE", "NO"),
        "x_run_id": ("VARCHAR", "NO"),
        "x_ingested_at": ("TIMESTAMP WITH TIME ZONE", "NO"),
        "x_ingestion_date": ("DATE", "NO"),
    }
    warehouse_path = services.settings.warehouse_url.removeprefix("duckdb://")
    schema = DuckDBWarehouse(warehouse_path).table_schema(TableRef("acme_dev", "usage_raw"))
    assert schema is not None
    assert [schema.field(f.name) for f in LINEAGE_FIELDS] == list(LINEAGE_FIELDS)


def test_the_attempt_and_the_run_are_recorded(
    services: Services, exec_pipeline: None, clock
) -> None:
    run_id = start(services).run_id
    run_step(services, run_id, "extract")

    run = services.store.get_run(run_id)
    assert run.status == state.RUNNING
    (attempt,) = services.store.step_attempts(run_id)
    assert (attempt.step_id, attempt.attempt, attempt.status) == (
        "extract",
        1,
        "completed",
    )
    assert attempt.rows_written == 4
    assert attempt.task_id == f"{run_id}:extract"
    assert attempt.claimed_until is None
    assert run.deadline_at == clock.now + timedelta(seconds=services.settings.queue_timeout)
    messages = [line.message for line in services.store.lines(run_id)]
    assert (
        "5 rows in usage.csv, 4 in 2026-01-01..2026-01-02; the source has data for "
        "2026-01-01..2026-01-03" in messages
    )
    assert any(m.startswith("wrote 4 rows to acme_dev.usage_raw (replace") for m in messages)
    assert messages[-1] == "completed: 4 rows written"


def test_a_load_that_finds_nothing_in_the_dates_says_what_the_source_has(
    services: Services, exec_pipeline: None
) -> None:
    from app.api.presenters import run_outcome

    run_id = start(services, start_date=date(2025, 12, 1), end_date=date(2025, 12, 7)).run_id
    run_step(services, run_id, "extract")
    run_step(services, run_id, "done")

    lines = services.store.lines(run_id)
    said = (
        "5 rows in usage.csv, 0 in 2025-12-01..2025-12-07; the source has data for "
        "2026-01-01..2026-01-03"
    )
    warned = [line for line in lines if line.message == f"nothing to load: {said}"]
    assert [(w.level, w.step_id) for w in warned] == [("WARNING", "extract")]
    (extract, _done) = services.store.step_attempts(run_id)
    assert extract.metrics["source_read"] == {
        "source": "usage.csv",
        "rows_read": 5,
        "rows_kept": 0,
        "first_date": "2026-01-01",
        "last_date": "2026-01-03",
    }
    run = services.store.get_run(run_id)
    assert run.status == state.COMPLETED
    assert run_outcome(run, services.store.step_attempts(run_id)) == {
        "rows_written": 0,
        "warnings": [
            "no rows in 2025-12-01..2025-12-07: the source has data for 2026-01-01..2026-01-03 "
            "(usage.csv), step extract"
        ],
    }


def test_the_last_step_completes_the_run(services: Services, exec_pipeline: None) -> None:
    run_id = start(services).run_id
    run_step(services, run_id, "extract")

    outcome = run_step(services, run_id, "done")

    assert outcome.status == "completed"
    assert outcome.metrics == {"slept_seconds": 0}
    run = services.store.get_run(run_id)
    assert run.status == state.COMPLETED
    assert run.ended_at is not None
    assert [(t.from_status, t.to_status) for t in services.store.transitions(run_id)] == [
        (None, state.PENDING),
        (state.PENDING, state.VALIDATING),
        (state.VALIDATING, state.QUEUED),
        (state.QUEUED, state.RUNNING),
        (state.RUNNING, state.COMPLETED),
    ]
    assert services.store.lines(run_id)[-1].message == "run completed"


def test_running_a_completed_step_again_is_skipped(services: Services, exec_pipeline: None) -> None:
    run_id = start(services).run_id
    run_step(services, run_id, "extract")
    lines = len(services.store.lines(run_id))

    again = run_step(services, run_id, "extract")
    twice = run_step(services, run_id, "extract", attempt=2)

    assert (again.status, again.reason) == ("skipped", "step already completed")
    assert twice.status == "skipped"
    assert len(services.store.step_attempts(run_id)) == 1
    assert len(services.store.lines(run_id)) == lines
    assert read_rows(services, "usage_raw").num_rows == 4


def test_a_step_on_an_ended_run_is_skipped(services: Services, exec_pipeline: None) -> None:
    run_id = start(services).run_id
    services.runs.cancel("acme", run_id)

    outcome = run_step(services, run_id, "extract")

    assert (outcome.status, outcome.reason) == ("skipped", "run already cancelled")
    assert services.store.step_attempts(run_id) == []


def test_a_step_whose_dependency_is_not_completed_waits(
    services: Services, exec_pipeline: None
) -> None:
    run_id = start(services).run_id

    with pytest.raises(DependencyPending, match="waiting for extract") as info:
        run_step(services, run_id, "done")

    assert info.value.retry_after == 2
    assert services.store.step_attempts(run_id) == []
    assert services.store.get_run(run_id).status == state.QUEUED


def test_a_rerun_of_the_same_key_replaces_the_slice(
    services: Services, exec_pipeline: None, clock
) -> None:
    first = start(services).run_id
    run_step(services, first, "extract")
    run_step(services, first, "done")
    clock.advance(3600)

    second = start(services).run_id
    run_step(services, second, "extract")

    rows = read_rows(services, "usage_raw").to_pydict()
    assert len(rows["x_run_id"]) == 4
    assert set(rows["x_run_id"]) == {second}
    assert set(rows["x_ingested_at"]) == {clock.now}


def test_load_refuses_unknown_runs_and_steps(services: Services, exec_pipeline: None) -> None:
    run_id = start(services).run_id
    run, spec = services.executor.load(run_id, "extract")
    assert run.run_id == run_id
    assert spec.ps_type == "generic.file_extract"
    with pytest.raises(TerminalError, match="has no step 'nope'"):
        services.executor.load(run_id, "nope")
    with pytest.raises(TerminalError, match="does not exist"):
        services.executor.load("no-such-run", "extract")


def test_a_terminal_error_leaves_the_attempt_running_until_failed_is_called(
    services: Services, write_pipeline, tmp_path: Path
) -> None:
    secret = "sk-proj0123456789abcdefXYZ"
    missing = tmp_path / f"{secret}.csv"
    write_pipeline(
        "test/unit/broken",
        PIPELINE.format(path=missing).replace("test_exec", "test_broken"),
    )
    run_id = start(services, pipeline="broken").run_id

    with pytest.raises(TerminalError, match="file not found") as info:
        run_step(services, run_id, "extract")

    (attempt,) = services.store.step_attempts(run_id)
    assert attempt.status == "running"
    assert services.store.get_run(run_id).status == state.RUNNING

    services.executor.failed(run_id, "extract", 1, str(info.value))

    (attempt,) = services.store.step_attempts(run_id)
    assert attempt.status == "failed"
    assert attempt.ended_at is not None
    assert secret not in attempt.error
    assert "file not found" in attempt.error
    run = services.store.get_run(run_id)
    assert run.status == state.FAILED
    assert run.error_message.startswith("step extract failed: file not found: ")
    assert "[REDACTED]" in run.error_message
    assert secret not in run.error_message
    for line in services.store.lines(run_id):
        assert secret not in line.message
    for transition in services.store.transitions(run_id):
        assert secret not in (transition.reason or "")
    # The dependent step never runs once the run failed.
    assert run_step(services, run_id, "done").status == "skipped"

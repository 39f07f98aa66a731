"""The write fence, on SQLite and a real PostgreSQL with a real DuckDB warehouse.

A step's warehouse commit either happens before its run is cancelled or not at all: the
fence holds the run's row while DuckDB commits, so a cancel arriving meanwhile waits for
the commit, and a commit attempted after the cancel is refused and rolled back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.bootstrap import Services, build_services
from pipeline.runs.fence import RunFence
from pipeline.runs.service import RunRequest
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.db import upgrade
from pipeline_ops_core.errors import RunCancelledError
from tests.integration.conftest import write_configs
from tests.support.doubles import NullDispatcher
from tests.support.servers import Server, app_env, create_pg_database
from warehouse.base import LineageKey, TableRef
from warehouse.duckdb import DuckDBWarehouse

PIPELINE = """
pipeline_id: test_fenced
name: One step
provider: fence
domain: unit
steps:
  - step_id: load
    ps_type: generic.noop
"""
DAY = date(2026, 11, 3)


@pytest.fixture(params=["sqlite", "postgres"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Services:
    if request.param == "postgres":
        server: Server = request.getfixturevalue("postgres_server")
        db_url = create_pg_database(server, f"fence_{uuid.uuid4().hex[:10]}")
    else:
        db_url = f"sqlite:///{tmp_path / 'meta.db'}"
    configs = write_configs(tmp_path, "fence/unit/fenced", PIPELINE)
    settings = Settings.from_env(app_env(tmp_path, db_url, "redis://127.0.0.1:1/0", configs))
    upgrade(settings.database_url)
    svc = build_services(settings, NullDispatcher())
    svc.orgs.create("acme")
    return svc


def running_step(svc: Services, worker: str = "host:1") -> str:
    req = RunRequest("acme", "fence", "unit", "fenced", DAY, DAY)
    run_id = str(svc.runs.start(req).run_id)
    claim = svc.store.begin_attempt(
        run_id, "load", 1, exists=False, task_id=None, worker=worker, alive_for=60, message="go"
    )
    assert claim is not None
    return run_id


def rows(n: int, run_id: str) -> pa.Table:
    stamp = {
        "x_org_slug": pa.array(["acme"] * n, pa.string()),
        "x_pipeline_id": pa.array(["test_fenced"] * n, pa.string()),
        "x_credential_id": pa.array(["default"] * n, pa.string()),
        "x_pipeline_run_date": pa.array([DAY] * n, pa.date32()),
        "x_run_id": pa.array([run_id] * n, pa.string()),
        "x_ingested_at": pa.array([0] * n, pa.timestamp("us", tz="UTC")),
        "x_ingestion_date": pa.array([DAY] * n, pa.date32()),
    }
    return pa.table({"value": pa.array(list(range(n)), pa.int64()), **stamp})


def write(warehouse: DuckDBWarehouse, run_id: str, n: int = 3) -> None:
    table = TableRef("acme_dev", "fenced")
    data = rows(n, run_id)
    warehouse.write_partition(table, data, LineageKey("acme", "test_fenced", "default", DAY, DAY))


def count(warehouse: DuckDBWarehouse) -> int:
    return int(warehouse.query("SELECT count(*) AS n FROM acme_dev.fenced").column(0)[0].as_py())


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    wh.ensure_dataset("acme_dev")
    wh.ensure_table(TableRef("acme_dev", "fenced"), rows(0, "x").schema)
    return wh


def test_a_write_after_the_cancel_is_refused_and_rolled_back(
    services: Services, warehouse: DuckDBWarehouse
) -> None:
    run_id = running_step(services)
    fenced = warehouse.fenced(RunFence(services.store.engine, run_id, "load", 1, "host:1"))
    write(fenced, run_id)
    assert count(warehouse) == 3  # while running, writes land

    assert services.runs.cancel("acme", run_id).status == state.CANCELLING
    with pytest.raises(RunCancelledError, match="is cancelling, not running"):
        write(fenced, run_id, n=5)
    assert count(warehouse) == 3  # the replace (delete 3, insert 5) was rolled back


def test_a_process_that_lost_its_attempt_may_not_write(
    services: Services, warehouse: DuckDBWarehouse
) -> None:
    run_id = running_step(services)
    # Another process took the attempt over (the first one's claim was stolen).
    services.store.begin_attempt(
        run_id, "load", 1, exists=True, task_id=None, worker="host:2", alive_for=60,
        message="taken over", steal_from="host:1",
    )  # fmt: skip
    stale = warehouse.fenced(RunFence(services.store.engine, run_id, "load", 1, "host:1"))
    with pytest.raises(RunCancelledError, match="no longer held by this process"):
        write(stale, run_id)
    assert count(warehouse) == 0


class SlowFence:
    """The real fence, which signals when it holds the run and then commits slowly."""

    def __init__(self, fence: RunFence) -> None:
        self.fence, self.holding = fence, threading.Event()

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self.fence.hold():
            self.holding.set()
            time.sleep(1.0)
            yield


def test_a_cancel_during_a_commit_waits_for_it(
    services: Services, warehouse: DuckDBWarehouse
) -> None:
    run_id = running_step(services)
    fence = SlowFence(RunFence(services.store.engine, run_id, "load", 1, "host:1"))
    committed: list[float] = []

    def writer() -> None:
        write(warehouse.fenced(fence), run_id)
        committed.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    assert fence.holding.wait(10)
    cancel = services.runs.cancel("acme", run_id)  # blocks on the run's row until commit
    cancelled_at = time.monotonic()
    thread.join(10)

    assert cancel.status == state.CANCELLING
    assert committed and committed[0] <= cancelled_at + 0.05
    assert count(warehouse) == 3  # the write came first, so it stands


def test_a_streamed_write_after_the_cancel_is_refused_and_rolled_back(
    services: Services, warehouse: DuckDBWarehouse
) -> None:
    run_id = running_step(services)
    fenced = warehouse.fenced(RunFence(services.store.engine, run_id, "load", 1, "host:1"))
    write(fenced, run_id)
    assert services.runs.cancel("acme", run_id).status == state.CANCELLING
    data = rows(5, run_id)
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=2))
    key = LineageKey("acme", "test_fenced", "default", DAY, DAY)
    with pytest.raises(RunCancelledError, match="is cancelling, not running"):
        fenced.write_stream(TableRef("acme_dev", "fenced"), reader, key)
    assert count(warehouse) == 3  # the streamed replace (delete 3, insert 5) was rolled back

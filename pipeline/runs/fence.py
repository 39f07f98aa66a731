"""The write fence of one step attempt: proves, under lock, that it may still write.

The warehouse (DuckDB, BigQuery) and the metadata database are separate systems, so the
warehouse change and the run's status can't share a transaction. What can be made atomic
is the order of events: the fence opens a metadata transaction that locks the run's row
and checks that the run is `running` and that this process still holds its attempt, and
keeps that transaction open while the warehouse commits (DuckDB: across its COMMIT;
BigQuery: across the DML job). A cancel updates the same row, so it waits for the commit
to finish — the change happened before the cancel — or it came first, and the fence
refuses the commit, which rolls back. Either way no change of a cancelled run is ever
committed after the cancel. The claim check also refuses a process that lost its attempt
to another (its claim expired and a redelivery took it over).

The lock is a `SELECT … FOR SHARE` on PostgreSQL (parallel steps of one run don't block
each other; only a status change waits), and a conditional no-op UPDATE on SQLite, which
takes SQLite's single write lock for the length of the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, select, update

from pipeline.storage import state
from pipeline.storage.tables import pipeline_runs, step_logs
from pipeline_ops_core.errors import RunCancelledError


class RunFence:
    def __init__(self, engine: Engine, run_id: str, step_id: str, attempt: int, worker: str):
        self.engine = engine
        self.run_id, self.step_id, self.attempt, self.worker = run_id, step_id, attempt, worker

    @contextmanager
    def hold(self) -> Iterator[None]:
        runs = pipeline_runs.c
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                status = conn.execute(
                    select(runs.status).where(runs.run_id == self.run_id).with_for_update(read=True)
                ).scalar()
                running = status == state.RUNNING
            else:
                running = bool(
                    conn.execute(
                        update(pipeline_runs)
                        .where(runs.run_id == self.run_id, runs.status == state.RUNNING)
                        .values(status=state.RUNNING)
                    ).rowcount
                )
                status = None
            holder = conn.execute(
                select(step_logs.c.worker, step_logs.c.status).where(
                    step_logs.c.run_id == self.run_id,
                    step_logs.c.step_id == self.step_id,
                    step_logs.c.attempt == self.attempt,
                )
            ).first()
            if not running:
                if status is None:
                    status = conn.execute(
                        select(runs.status).where(runs.run_id == self.run_id)
                    ).scalar()
                raise RunCancelledError(
                    f"write refused: run {self.run_id} is {status}, not running"
                )
            if holder is None or holder[0] != self.worker or holder[1] != "running":
                raise RunCancelledError(
                    f"write refused: step {self.step_id} attempt {self.attempt} is no longer "
                    f"held by this process ({self.worker})"
                )
            yield

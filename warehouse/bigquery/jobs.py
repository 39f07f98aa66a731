"""Deterministic job ids and staging tables, so a redelivered step attempt reuses its work.

A job id is derived from (run, step, attempt, write number, table) plus the phase (`load`
or `dml`). Before starting a phase the backend looks its id up:

- not found: start the job under that id;
- done without error (and still usable): reuse it, nothing runs twice;
- still running (the earlier delivery's job outlived its worker): wait for it, then decide;
- failed or unusable: supersede it with the next generation (`..._g2`, `..._g3`), because
  BigQuery never accepts a job id twice.

Emulator gap 1: bqemulator ignores the job id of a load job sent as a resumable upload (it
names it `bqemu_...`) and accepts a query job id twice. Lookups then simply find nothing
for loads, which only costs a repeated load into the same staging table.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.exceptions import GoogleAPIError

from warehouse.base import JobContext, TableRef
from warehouse.bigquery.errors import BigQueryTransientError, bq_errors

# Staging tables expire on their own if a worker dies before dropping one.
STAGING_TTL = timedelta(hours=24)
MAX_GENERATIONS = 5


def adhoc_context() -> JobContext:
    """For callers that pass no context: unique ids, so nothing is reused by mistake."""
    return JobContext(run_id=uuid.uuid4().hex, step_id="adhoc", attempt=1)


@dataclass(frozen=True)
class WriteJobs:
    """Names of the jobs and staging table of one write."""

    base: str
    staging: TableRef

    @classmethod
    def for_write(cls, project: str, table: TableRef, ctx: JobContext) -> WriteJobs:
        parts = [project, table.dataset, table.table, ctx.run_id, ctx.step_id]
        parts += [str(ctx.attempt), str(ctx.seq)]
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
        step = re.sub(r"[^A-Za-z0-9_]", "_", ctx.step_id)[:40]
        base = f"po_{step}_a{ctx.attempt}_w{ctx.seq}_{digest}"
        staging = f"_po_stg_{table.table[:60]}_{digest}_a{ctx.attempt}"[:128]
        return cls(base=base, staging=TableRef(table.dataset, staging))

    def job_id(self, phase: str, generation: int = 1) -> str:
        suffix = f"_g{generation}" if generation > 1 else ""
        return f"{self.base}_{phase}{suffix}"


def lookup(client: Any, job_id: str, location: str) -> Any | None:
    with bq_errors("job lookup", job_id):
        try:
            return client.get_job(job_id, location=location)
        except gexc.NotFound:
            return None


def _settled(job: Any) -> Any:
    """Wait for a job another delivery started; its failure is looked at, not raised."""
    if job.state != "DONE":
        with contextlib.suppress(GoogleAPIError):
            job.result()
        job.reload()
    return job


def find_reusable(
    client: Any, jobs: WriteJobs, phase: str, location: str, usable: Callable[[Any], bool]
) -> tuple[Any | None, str]:
    """(a finished job to reuse, or None; the id to start the next job under)."""
    for generation in range(1, MAX_GENERATIONS + 1):
        job_id = jobs.job_id(phase, generation)
        job = lookup(client, job_id, location)
        if job is None:
            return None, job_id
        job = _settled(job)
        if job.error_result is None and usable(job):
            return job, job_id
    raise BigQueryTransientError(
        f"BigQuery {phase} of {jobs.base}: {MAX_GENERATIONS} job generations already exist"
    )


def start_once(client: Any, job_id: str, location: str, start: Callable[[str], Any]) -> Any:
    """Start a job under `job_id`; if a concurrent delivery just took the id, adopt its job."""
    with bq_errors("job start", job_id):
        try:
            return start(job_id)
        except gexc.Conflict:
            job = _settled(client.get_job(job_id, location=location))
            if job.error_result is not None:
                raise BigQueryTransientError(
                    f"BigQuery job {job_id} was started concurrently and failed; retrying",
                    job_id=job_id,
                ) from None
            return job

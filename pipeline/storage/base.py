"""The run store's contract: what the services, the executor and the API need from it.

`SqlRunStore` (run_store.py) implements it, and
tests/unit/pipeline/storage/test_run_store_contract.py checks that its public methods are
exactly these, with these signatures. Every query returns records (records.py), never
rows. Callers that need only this contract take a `RunStore` (the step log, the cancel
watch, the CLI's follower); the run service, the executor and notifications still reach
the SQL engine beside it (backfill queries, the write fence, the vault), so they take
the SqlRunStore.

Status changes follow the state machine (state.py): a move from a status that
`state.allowed_from` does not name raises IllegalTransitionError and changes nothing, and
a move to the status the run already has is a no-op that returns False.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pipeline.storage.records import (
    Claim,
    LogLine,
    LostWorkerAttempt,
    RunPlan,
    RunRecord,
    StepAttempt,
    Transition,
)
from pipeline.storage.statements import Clock
from pipeline_ops_core.errors import ConflictError


class RunStore(Protocol):
    # The clock of the records' timestamps; stored text longer than text_limit is cut.
    clock: Clock
    text_limit: int

    # -- organizations -------------------------------------------------------------------

    def create_org(self, org_slug: str, name: str, key_prefix: str, key_hash: str) -> None: ...

    def get_org(self, org_slug: str) -> dict[str, Any] | None: ...

    def org_by_key_prefix(self, prefix: str) -> dict[str, Any] | None: ...

    def list_orgs(self) -> list[dict[str, Any]]: ...

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self, values: dict[str, Any], reason: str = "run requested", deadline_in: float = 0
    ) -> RunRecord:
        """Insert a `pending` run (and its first transition); ConflictError if an active
        run holds the same idempotency key."""
        ...

    def active_run(self, idempotency_key: str) -> tuple[str, str] | None:
        """(run_id, status) of the active run holding `idempotency_key`, if any."""
        ...

    def key_conflict(self, idempotency_key: str) -> ConflictError | None: ...

    def run_status(self, run_id: str) -> str | None: ...

    def get_run(self, run_id: str, org_slug: str | None = None) -> RunRecord | None:
        """The run with its plan; None if it doesn't exist (or belongs to another org)."""
        ...

    def resolve_run_id(self, ref: str, org_slug: str | None = None) -> str:
        """The full id a full id or unique prefix names; NotFoundError or RunIdError."""
        ...

    def transition(
        self, run_id: str, to_status: str, reason: str | None = None, **fields: Any
    ) -> bool:
        """Move a run to `to_status`, setting `fields`; False if it is already there."""
        ...

    def admit(
        self,
        run_id: str,
        validating_at: datetime,
        plan: RunPlan | None,
        deadline_in: float,
        error: str | None = None,
    ) -> None:
        """pending -> validating -> queued with `plan` (or -> failed with `error`), atomically."""
        ...

    def touch(self, run_id: str, seconds: float) -> str | None:
        """Heartbeat: push the run's deadline `seconds` ahead; returns its status."""
        ...

    def request_cancel(self, run_id: str, reason: str) -> tuple[str | None, bool]:
        """(the status the run left, whether it ended `cancelled` now)."""
        ...

    def settle_cancel(self, run_id: str, reason: str, force: bool = False) -> bool:
        """End a cancelling run `cancelled` once no step of it executes (or `force`)."""
        ...

    def cancelling_runs(self) -> list[RunRecord]: ...

    def runs_losing_workers(self, max_lost: int) -> list[LostWorkerAttempt]: ...

    def overdue_runs(self) -> list[RunRecord]:
        """Active runs whose deadline passed."""
        ...

    def list_runs(
        self,
        org_slug: str,
        limit: int = 50,
        cursor: tuple[datetime, str] | None = None,
        status: str | None = None,
        pipeline_id: str | None = None,
    ) -> list[RunRecord]:
        """Newest first, keyset-paginated on (created_at, run_id); plans not loaded."""
        ...

    def transitions(self, run_id: str) -> list[Transition]: ...

    # -- step attempts ----------------------------------------------------------------------

    def attempt_states(self, run_id: str) -> list[tuple[str, int, str, str | None]]:
        """(step_id, attempt, status, worker) of every attempt of a run."""
        ...

    def begin_attempt(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        *,
        exists: bool,
        task_id: str | None,
        worker: str,
        alive_for: float,
        message: str,
        steal_from: str | None = None,
    ) -> Claim | None:
        """Claim an attempt for `worker` and move the run to running, atomically; None
        when another live process holds the claim (a duplicate delivery)."""
        ...

    def finish_attempt(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        status: str,
        *,
        started_at: datetime | None,
        deadline_in: float | None,
        level: str,
        message: str,
        rows_written: int = 0,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Close an attempt; True if that ended a cancelling run `cancelled`."""
        ...

    def renew_claim(
        self, run_id: str, step_id: str, attempt: int, worker: str, seconds: float
    ) -> None: ...

    def attempt_started_at(self, run_id: str, step_id: str, attempt: int) -> datetime | None: ...

    def step_attempts(self, run_id: str) -> list[StepAttempt]: ...

    # -- log lines -------------------------------------------------------------------------

    def add_line(
        self,
        run_id: str,
        level: str,
        message: str,
        step_id: str | None = None,
        attempt: int | None = None,
    ) -> None: ...

    def lines(self, run_id: str) -> list[LogLine]: ...

"""The run service: admit, validate, plan and enqueue a run; cancel it; finish it.

Views, the CLI and beat all start runs here, so every start path gets the same
checks, the same quota and the same records. Celery is behind `Dispatcher`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from credentials.base import CredentialProvider, NoCredentials, check_usable
from credentials.errors import CredentialError
from pipeline.definition import templates
from pipeline.definition.catalog import PipelineCatalog
from pipeline.definition.config import PipelineSpec
from pipeline.definition.dag import plan_levels
from pipeline.definition.providers import read_registry, registry_path_for
from pipeline.observability.redact import redact
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.records import PlannedStep, RunPlan, RunRecord
from pipeline.storage.run_store import SqlRunStore
from pipeline_ops_core.errors import (
    NotFoundError,
    PipelineOpsError,
    QuotaExceededError,
    RunNotActiveError,
    RunValidationError,
    ServiceUnavailableError,
    TerminalError,
)
from pipeline_ops_core.identifiers import CREDENTIAL_ID_RE
from processors.registry import check_extras
from quota.base import QuotaGate

MAX_RANGE_DAYS = 366
# No cost source this engine reads goes back further; an earlier date is a typo.
EARLIEST_DATE = date(2000, 1, 1)

logger = logging.getLogger("pipeline_ops.runs")


class DateRangeError(TerminalError):
    """The run's dates are outside what any source can have data for."""

    code = "invalid_dates"


class NothingToRerunError(TerminalError):
    """A re-run from the failed step of a run that did not fail."""

    code = "nothing_to_rerun"


# Called once per run that ends completed or failed: (run_id, org_slug, status).
RunEndHook = Callable[[str, str, str], None]


class Dispatcher(Protocol):
    def check(self) -> None:
        """Raise ServiceUnavailableError when the broker can't take a run now, so a run
        that could never be enqueued is refused before it is recorded."""

    def enqueue(self, run_id: str, plan: RunPlan) -> None: ...

    def revoke(self, run_id: str, plan: RunPlan) -> None: ...


@dataclass
class RunRequest:
    org_slug: str
    provider: str
    domain: str
    pipeline: str
    start_date: date | None = None
    end_date: date | None = None
    credential_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trigger: str = "api"
    # Re-run from the failed step: the steps this (terminal) run of the same key completed
    # are not run again; the new run reuses what they wrote.
    reuse_from: str | None = None


def idempotency_key(org: str, pipeline_id: str, credential: str, start: date, end: date) -> str:
    return f"{org}|{pipeline_id}|{credential}|{start.isoformat()}|{end.isoformat()}"


def build_plan(spec: PipelineSpec, variables: dict[str, str], dataset: str, grace: int) -> RunPlan:
    """Resolve every step's templates and lay the steps out as topological levels."""
    steps = {
        step.step_id: PlannedStep(
            ps_type=step.ps_type,
            config=templates.resolve(dict(step.config), variables),
            depends_on=tuple(step.depends_on),
            timeout_seconds=step.timeout_seconds,
            time_limit=step.timeout_seconds + grace,
            max_attempts=step.retry.max_attempts,
            backoff_seconds=step.retry.backoff_seconds,
        )
        for step in spec.steps
    }
    return RunPlan(
        pipeline_id=spec.pipeline_id,
        dataset=dataset,
        levels=tuple(tuple(level) for level in plan_levels(spec.steps)),
        steps=steps,
    )


def reuse_completed(plan: RunPlan, source_run_id: str, completed: dict[str, str]) -> RunPlan:
    """The plan without the steps to reuse: those completed before (by `completed`'s run)
    whose own dependencies are all reused too, since a step downstream of one that runs
    again must read its new output. They stay in `steps` (and are listed under `reused`)
    so the run shows them, but no task is enqueued for them."""
    reused: dict[str, str] = {}
    for level in plan.levels:
        for step_id in level:
            deps = plan.steps[step_id].depends_on
            if step_id in completed and all(d in reused for d in deps):
                reused[step_id] = completed[step_id]
    levels = [tuple(s for s in level if s not in reused) for level in plan.levels]
    return replace(
        plan,
        levels=tuple(level for level in levels if level),
        reused=reused,
        rerun_of=source_run_id,
    )


class RunService:
    def __init__(
        self,
        settings: Settings,
        store: SqlRunStore,
        catalog: PipelineCatalog,
        gate: QuotaGate,
        dispatcher: Dispatcher,
        clock: Callable[[], datetime] | None = None,
        on_end: RunEndHook | None = None,
        credentials: CredentialProvider | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.gate = gate
        self.dispatcher = dispatcher
        self.clock = clock or store.clock
        self.on_end = on_end
        self.credentials = credentials or NoCredentials()

    # -- start -----------------------------------------------------------------------------

    def start(self, req: RunRequest) -> RunRecord:
        """Admit and enqueue a run. Raises before recording anything on bad input."""
        if self.store.get_org(req.org_slug) is None:
            raise NotFoundError(f"org {req.org_slug!r} not found")
        spec = self.catalog.load(req.provider, req.domain, req.pipeline)
        # A pipeline whose SDK this install lacks would only fail in the worker.
        check_extras(step.ps_type for step in spec.steps)
        start, end = self._dates(req)
        self.check_dates(spec, start, end)
        credential_id = req.credential_id or "default"
        if not CREDENTIAL_ID_RE.fullmatch(credential_id):
            raise TerminalError(
                f"invalid credential_id {credential_id!r}: use 1-128 of a-z, 0-9, _ and -"
            )
        # Exists, enabled, same provider as the pipeline (metadata only; the API never
        # decrypts), and a stored one where the provider needs a secret. Refused here,
        # before the run is recorded: 422 and no run row.
        info = check_usable(
            self.credentials, req.org_slug, credential_id, spec.provider, spec.pipeline_id
        )
        if not info.stored:
            self._check_needs_no_credential(req, spec)
        key = idempotency_key(req.org_slug, spec.pipeline_id, credential_id, start, end)
        conflict = self.store.key_conflict(key)
        if conflict is not None:
            raise conflict
        # A run the broker can't take would only be recorded to fail: refuse it first.
        self.dispatcher.check()
        run_id = str(uuid.uuid4())
        self._reserve(req.org_slug, run_id)
        deadline_in = self.settings.queue_timeout
        try:
            self.store.create_run(
                {
                    "run_id": run_id,
                    "org_slug": req.org_slug,
                    "pipeline_id": spec.pipeline_id,
                    "pipeline_path": f"{req.provider}/{req.domain}/{req.pipeline}",
                    "idempotency_key": key,
                    "trigger": req.trigger,
                    "credential_id": credential_id,
                    "start_date": start,
                    "end_date": end,
                    "params": req.params,
                },
                reason=f"requested via {req.trigger}",
                # Reaped if this process dies before the run is enqueued.
                deadline_in=deadline_in,
            )
        except BaseException:
            self.gate.release(req.org_slug, run_id, succeeded=False)
            raise
        validating_at = self.clock()
        try:
            plan = self._plan(spec, req.org_slug, run_id, credential_id, start, end)
            if req.reuse_from:
                plan = reuse_completed(plan, req.reuse_from, self._completed_steps(req.reuse_from))
        except PipelineOpsError as exc:
            message = f"validation failed: {exc}"
            self.store.admit(run_id, validating_at, None, deadline_in, error=message)
            self.gate.release(req.org_slug, run_id, succeeded=False)
            self._ended(run_id, req.org_slug, state.FAILED)  # a 03:00 schedule has no caller
            raise RunValidationError(message, run_id) from exc
        self.store.admit(run_id, validating_at, plan, deadline_in)
        try:
            self.dispatcher.enqueue(run_id, plan)
        except Exception as exc:  # the broker went down after check(): nothing will run this
            unavailable = isinstance(exc, ServiceUnavailableError)
            detail = str(exc) if unavailable else f"{type(exc).__name__}: {exc}"
            message = redact(f"could not enqueue the run: {detail}") or detail
            self.fail(run_id, message)
            raise ServiceUnavailableError(message) from exc
        run = self.store.get_run(run_id)
        assert run is not None
        return run

    def rerun(self, org_slug: str, run_id: str, from_failed: bool = False) -> RunRecord:
        """A new run of `run_id`'s pipeline, dates, credential and params (the same key).
        With `from_failed`, the steps it completed are reused rather than run again, so the
        new run starts at the step that failed (or was cancelled)."""
        source = self.store.get_run(run_id, org_slug=org_slug)
        if source is None:
            raise NotFoundError(f"run {run_id} not found")
        if from_failed and source.status not in (state.FAILED, state.CANCELLED):
            raise NothingToRerunError(
                f"run {run_id} is {source.status}: only a failed or cancelled run can be "
                "re-run from its failed step (re-run it whole instead)"
            )
        provider, domain, pipeline = source.pipeline_path.split("/")
        return self.start(
            RunRequest(
                org_slug,
                provider,
                domain,
                pipeline,
                start_date=source.start_date,
                end_date=source.end_date,
                credential_id=source.credential_id,
                params=dict(source.params),
                trigger="rerun",
                reuse_from=run_id if from_failed else None,
            )
        )

    def _completed_steps(self, run_id: str) -> dict[str, str]:
        """step_id -> the run whose output it is: the run's completed steps and, through
        it, those it reused itself."""
        source = self.store.get_run(run_id)
        reused = dict(source.plan.reused) if source is not None and source.plan else {}
        for step, _, status, _ in self.store.attempt_states(run_id):
            if status == "completed":
                reused[step] = run_id
        return reused

    def _reserve(self, org_slug: str, run_id: str) -> None:
        """Reserve a quota slot; if the concurrent limit is full, first free the slots of
        the org's dead runs (heartbeat or queue deadline passed), then try once more."""
        try:
            self.gate.reserve(org_slug, run_id)
        except QuotaExceededError as exc:
            if exc.limit != "concurrent" or not self.reap(org_slug):
                raise
            self.gate.reserve(org_slug, run_id)

    def _dates(self, req: RunRequest) -> tuple[date, date]:
        # A daily cost pipeline's natural default is yesterday (UTC): today is incomplete.
        yesterday = (self.clock() - timedelta(days=1)).date()
        start = req.start_date or req.end_date or yesterday
        end = req.end_date or start
        if end < start:
            raise TerminalError(f"end_date {end} is before start_date {start}")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise TerminalError(f"date range longer than {MAX_RANGE_DAYS} days; split it")
        return start, end

    def check_dates(self, spec: PipelineSpec, start: date, end: date) -> None:
        """Refuse dates no source has data for: before EARLIEST_DATE, or after today (UTC;
        tomorrow for a pipeline that declares `accepts_future_dates: true`)."""
        if start < EARLIEST_DATE:
            raise DateRangeError(
                f"start_date {start} is before {EARLIEST_DATE}, the earliest date a run may cover"
            )
        today = self.clock().astimezone(UTC).date()
        if spec.accepts_future_dates:
            latest = today + timedelta(days=1)
            if end > latest:
                raise DateRangeError(
                    f"end_date {end} is after tomorrow ({latest}, UTC), the latest date "
                    f"pipeline {spec.pipeline_id} accepts"
                )
        elif end > today:
            raise DateRangeError(
                f"end_date {end} is after today ({today}, UTC): no source has cost data for "
                f"days that have not happened yet (a pipeline that may run ahead declares "
                f"`accepts_future_dates: true`)"
            )

    def _check_needs_no_credential(self, req: RunRequest, spec: PipelineSpec) -> None:
        """Refuse a run of a provider that needs a credential when none is stored for it:
        it would be admitted, use quota, and fail in the worker."""
        path = self.catalog.path_for(req.provider, req.domain, req.pipeline)
        registry_file = registry_path_for(path)
        registry, _ = read_registry(registry_file) if registry_file else (None, [])
        info = (registry or {}).get(spec.provider)
        if info is None or not info.credential_required:
            return
        shown = path.relative_to(self.catalog.configs_dir).with_suffix("").as_posix()
        raise CredentialError(
            f"pipeline {shown} needs a credential of provider {spec.provider}; add one with "
            f"`pipeline-ops credentials add --org {req.org_slug} {spec.provider} --name NAME "
            f"--file key.json` and give its id as credential_id (or store it with --id default)"
        )

    def _plan(
        self,
        spec: PipelineSpec,
        org_slug: str,
        run_id: str,
        credential_id: str,
        start: date,
        end: date,
    ) -> RunPlan:
        dataset = self.settings.org_dataset(org_slug)
        variables = {
            "org_slug": org_slug,
            "project_id": self.settings.project_id,
            "org_dataset": dataset,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "credential_id": credential_id,
            "pipeline_id": spec.pipeline_id,
            "run_id": run_id,
        }
        return build_plan(spec, variables, dataset, self.settings.time_limit_grace)

    # -- end -------------------------------------------------------------------------------

    def fail(self, run_id: str, message: str, reason: str | None = None) -> bool:
        """End a run `failed` and release its slot. Safe to call more than once."""
        run = self.store.get_run(run_id)
        if run is None or run.status in state.TERMINAL:
            return False
        if run.status == state.CANCELLING:
            # Being cancelled: it ends `cancelled` once its steps stopped, not `failed`.
            if self.store.settle_cancel(run_id, f"cancelled; {message}"):
                self.cancel_settled(run_id, run.org_slug)
                return True
            return False
        try:
            moved = self.store.transition(
                run_id, state.FAILED, reason or message, error_message=message
            )
        except Exception:
            # Lost a race with another terminal move; that one released the slot.
            return False
        if moved:
            self.gate.release(run.org_slug, run_id, succeeded=False)
            self._ended(run_id, run.org_slug, state.FAILED)
        return moved

    def complete(self, run_id: str, org_slug: str | None = None) -> bool:
        """End a running run `completed` and release its slot. Safe to call more than once.

        A caller that knows the org (the step that just finished the run) skips the read:
        the conditional move already refuses a run that is not running.
        """
        if org_slug is None:
            run = self.store.get_run(run_id)
            if run is None or run.status != state.RUNNING:
                return False
            org_slug = run.org_slug
        try:
            moved = self.store.transition(run_id, state.COMPLETED, "all steps completed")
        except Exception:
            return False
        if moved:
            self.gate.release(org_slug, run_id, succeeded=True)
            self._ended(run_id, org_slug, state.COMPLETED)
        return moved

    def _ended(self, run_id: str, org_slug: str, status: str) -> None:
        # Only the process whose transition won gets here, so the hook runs once per run;
        # whatever it does (queue notifications), it can't change the run's result.
        if self.on_end is None:
            return
        try:
            self.on_end(run_id, org_slug, status)
        except Exception:
            logger.warning("run-end hook failed", exc_info=True, extra={"run_id": run_id})

    def cancel(self, org_slug: str, run_id: str) -> RunRecord:
        """Cancel an active run.

        A run no step is executing ends `cancelled` now. A run with a step executing moves
        to `cancelling`: it keeps its quota slot and idempotency key, and can no longer
        change the warehouse (the write fence), until that step has stopped; the step's
        own end (or the reaper) then ends it `cancelled` and releases the slot.
        """
        run = self.store.get_run(run_id, org_slug=org_slug)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        if run.status in state.TERMINAL:
            raise RunNotActiveError(f"run {run_id} already ended with status {run.status}")
        left, ended = self.store.request_cancel(run_id, "cancelled by request")
        if ended:
            self.gate.release(org_slug, run_id, succeeded=False)
        if left is not None and run.plan is not None:
            # Steps not started yet are dropped by the workers; a step executing now is
            # stopped by its own heartbeat, which sees the run cancelling.
            self.dispatcher.revoke(run_id, run.plan)
        updated = self.store.get_run(run_id)
        assert updated is not None
        return updated

    def cancel_settled(self, run_id: str, org_slug: str | None = None) -> None:
        """A cancelling run just ended `cancelled` (its last step stopped): free its slot."""
        if org_slug is None:
            run = self.store.get_run(run_id)
            if run is None:
                return
            org_slug = run.org_slug
        self.gate.release(org_slug, run_id, succeeded=False)

    def reap(self, org_slug: str | None = None) -> list[str]:
        """End runs that nothing will end otherwise; release their slots.

        - active runs whose heartbeat or queue deadline passed (database clock) fail; a
          cancelling one ends `cancelled`;
        - a cancelling run whose executing step's claim lapsed ends `cancelled`;
        - a run whose step keeps killing its worker process (each redelivery takes the
          attempt over) fails once PIPELINE_OPS_MAX_LOST_WORKERS is reached.

        Without `org_slug` (the reaper's pass) the quota gate also releases expired
        leases and resyncs its Redis mirror from the ledger.
        """
        reaped = []
        for run in self.store.overdue_runs():
            if org_slug is not None and run.org_slug != org_slug:
                continue
            if run.status == state.CANCELLING:
                if self.store.settle_cancel(
                    run.run_id,
                    "reaper: cancelled; the step being stopped sent no heartbeat since "
                    f"{run.heartbeat_at.isoformat() if run.heartbeat_at else 'start'}",
                    force=True,
                ):
                    self.cancel_settled(run.run_id, run.org_slug)
                    reaped.append(run.run_id)
                continue
            if run.status == state.RUNNING:
                message = (
                    "no heartbeat since "
                    f"{run.heartbeat_at.isoformat() if run.heartbeat_at else 'start'}: "
                    "the worker running this run stopped (killed or lost)"
                )
            elif run.status == state.QUEUED:
                message = "the run waited in the queue past its deadline: no worker picked it up"
            else:
                message = f"the run stayed {run.status} past its deadline: admission never finished"
            if self.fail(run.run_id, message, reason=f"reaper: {message}"):
                reaped.append(run.run_id)
        for run in self.store.cancelling_runs():
            if org_slug is not None and run.org_slug != org_slug:
                continue
            if self.store.settle_cancel(
                run.run_id, "reaper: cancelled; the step being stopped is gone"
            ):
                self.cancel_settled(run.run_id, run.org_slug)
                reaped.append(run.run_id)
        limit = self.settings.max_lost_workers
        for lost in self.store.runs_losing_workers(limit):
            if org_slug is not None and lost.org_slug != org_slug:
                continue
            message = (
                f"step {lost.step_id} failed: the worker was lost {lost.lost_workers} "
                "times running this step; out of memory?"
            )
            if self.fail(lost.run_id, message, reason=f"reaper: {message}"):
                reaped.append(lost.run_id)
        if org_slug is None:
            self.gate.reconcile()
        return reaped

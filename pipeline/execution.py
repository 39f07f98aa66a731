"""Executing one step attempt: the framework-free part of the Celery step task.

The task (tasks/steps.py) only maps outcomes to Celery: retry, fail, ignore.
Everything that touches records happens here, so --local and the workers run
the very same code.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from credentials.base import CredentialProvider
from errors import IllegalTransitionError, PipelineOpsError, TerminalError, TransientError
from pipeline import state
from pipeline.lineage import make_writer
from pipeline.lock_waits import lock_wait_reporter
from pipeline.redact import redact
from pipeline.runs import RunService
from pipeline.settings import Settings
from pipeline.store import RunStore
from pipeline.subscriptions import SqlSubscriptionReader
from processors.base import SOURCE_READ_METRIC, StepContext
from processors.registry import get_processor
from warehouse.base import JobContext, LineageKey, Warehouse
from warehouse.scoped import OrgScopedWarehouse

logger = logging.getLogger("pipeline_ops.step")


class DependencyPending(TransientError):
    """A step was delivered before all of its dependencies completed."""


class DuplicateDelivery(PipelineOpsError):
    """Another live process is already executing this very attempt."""


@dataclass
class StepOutcome:
    status: str  # completed | skipped
    rows_written: int = 0
    tables: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: str | None) -> bool:
    """True when the claim holder was a process on this host that no longer exists."""
    if not holder or ":" not in holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class StepLog:
    """The `ctx.log` of a step: lines go to the run log and to the process log."""

    def __init__(self, store: RunStore, run_id: str, step_id: str | None, attempt: int | None):
        self.store, self.run_id, self.step_id, self.attempt = store, run_id, step_id, attempt

    def _emit(self, level: str, message: str) -> None:
        message = redact(message) or ""
        self.store.add_line(self.run_id, level, message, self.step_id, self.attempt)
        logger.log(
            getattr(logging, level),
            message,
            extra={"run_id": self.run_id, "step_id": self.step_id, "attempt": self.attempt},
        )

    def info(self, message: str) -> None:
        self._emit("INFO", message)

    def warning(self, message: str) -> None:
        self._emit("WARNING", message)

    def error(self, message: str) -> None:
        self._emit("ERROR", message)


class Heartbeat(threading.Thread):
    """Keeps the run's deadline and the attempt's claim ahead while the step works."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        super().__init__(daemon=True, name="pipeline-ops-heartbeat")
        self._beat, self._interval, self._stop_event = beat, interval, threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                self._beat()
            except Exception:  # a missed beat is survivable; the next one may land
                logger.warning("heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()


class StepExecutor:
    def __init__(
        self,
        settings: Settings,
        store: RunStore,
        runs: RunService,
        warehouse_factory: Callable[..., Warehouse],
        credentials: CredentialProvider,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runs = runs
        self.warehouse_factory = warehouse_factory
        self.credentials = credentials
        self.clock = store.clock

    def load(self, run_id: str, step_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run and the planned spec of one of its steps."""
        run = self.store.get_run(run_id)
        if run is None or not run.get("plan"):
            raise TerminalError(f"run {run_id} does not exist or has no plan")
        try:
            return run, dict(run["plan"]["steps"][step_id])
        except KeyError:
            raise TerminalError(f"run {run_id} has no step {step_id!r}") from None

    def run(
        self, run: dict[str, Any], step_id: str, attempt: int, task_id: str | None = None
    ) -> StepOutcome:
        run_id = run["run_id"]
        if run["status"] in state.TERMINAL:
            return StepOutcome("skipped", reason=f"run already {run['status']}")
        states = self.store.attempt_states(run_id)
        completed = {step for step, _, status, _ in states if status == "completed"}
        if step_id in completed:
            return StepOutcome("skipped", reason="step already completed")
        spec = run["plan"]["steps"][step_id]
        pending = [d for d in spec["depends_on"] if d not in completed]
        if pending:
            raise DependencyPending(f"waiting for {', '.join(pending)} to complete", retry_after=2)

        mine = [(status, worker) for s, a, status, worker in states if (s, a) == (step_id, attempt)]
        holder = mine[0][1] if mine and mine[0][0] == "running" else None
        me = worker_identity()
        alive_until = self.clock() + timedelta(seconds=self.settings.heartbeat_timeout)
        try:
            started_at = self.store.begin_attempt(
                run_id,
                step_id,
                attempt,
                exists=bool(mine),
                task_id=task_id,
                worker=me,
                claim_until=alive_until,
                deadline_at=alive_until,
                steal_from=holder if holder_is_dead(holder) else None,
                message=f"attempt {attempt} started on {me} ({spec['ps_type']})",
            )
        except IllegalTransitionError as exc:
            return StepOutcome("skipped", reason=str(exc))
        if started_at is None:
            raise DuplicateDelivery(f"{step_id} attempt {attempt} is already running on {holder}")

        log = StepLog(self.store, run_id, step_id, attempt)
        heartbeat = Heartbeat(
            lambda: self._beat(run, step_id, attempt, me), self.settings.heartbeat_interval
        )
        heartbeat.start()
        try:
            result = get_processor(spec["ps_type"]).run(self._context(run, step_id, attempt, log))
        finally:
            heartbeat.stop()
        metrics = dict(result.metrics)
        if result.read is not None:
            # Stored with the attempt so the run's status can warn about an empty load.
            metrics[SOURCE_READ_METRIC] = result.read.as_json()
            if not result.read.rows_kept:
                start, end = _as_date(run["start_date"]), _as_date(run["end_date"])
                log.warning(f"nothing to load: {result.read.describe(start, end)}")
        # Until the next step starts, the run waits in the broker like a queued run.
        self.store.finish_attempt(
            run_id,
            step_id,
            attempt,
            "completed",
            started_at=started_at,
            deadline_at=self.clock() + timedelta(seconds=self.settings.queue_timeout),
            level="INFO",
            message=f"completed: {result.rows_written} rows written",
            rows_written=result.rows_written,
            metrics=metrics,
        )
        if completed | {step_id} >= set(run["plan"]["steps"]):
            # The last step completes the run itself, saving a broker hop; the
            # finalizer task at the end of the canvas remains the guarantee.
            self.finalize(run_id, run["org_slug"])
        return StepOutcome("completed", result.rows_written, result.tables, result.metrics)

    def _beat(self, run: dict[str, Any], step_id: str, attempt: int, me: str) -> None:
        now = self.clock()
        until = now + timedelta(seconds=self.settings.heartbeat_timeout)
        self.store.touch(run["run_id"], until)
        self.store.renew_claim(run["run_id"], step_id, attempt, me, until)
        self.runs.gate.heartbeat(run["org_slug"], run["run_id"])

    def _context(
        self, run: dict[str, Any], step_id: str, attempt: int, log: StepLog
    ) -> StepContext:
        plan = run["plan"]
        start, end = _as_date(run["start_date"]), _as_date(run["end_date"])
        key = LineageKey(run["org_slug"], run["pipeline_id"], run["credential_id"], start, end)
        warehouse = self.warehouse_factory(
            on_lock_wait=lock_wait_reporter(log, self.settings.redis_url)
        )
        org, credential_id = run["org_slug"], run["credential_id"]
        return StepContext(
            org_slug=org,
            run_id=run["run_id"],
            pipeline_id=run["pipeline_id"],
            step_id=step_id,
            attempt=attempt,
            start_date=start,
            end_date=end,
            config=plan["steps"][step_id]["config"],
            dataset=plan["dataset"],
            credential_id=credential_id,
            # The platform's identity, limited to this org's dataset (warehouse/scoped.py).
            warehouse=OrgScopedWarehouse(warehouse, plan["dataset"]),
            log=log,
            _credential_loader=lambda: self.credentials.get(org, credential_id),
            _writer=make_writer(
                warehouse,
                plan["dataset"],
                key,
                run["run_id"],
                self.clock,
                log,
                job_context=JobContext(run["run_id"], step_id, attempt),
            ),
            readers={"subscriptions": SqlSubscriptionReader(self.store.engine)},
        )

    # -- outcomes the task reports ---------------------------------------------------------

    def retrying(
        self, run_id: str, step_id: str, attempt: int, error: str, countdown: float
    ) -> None:
        error = redact(error) or ""
        # The retry waits in the broker; give it its countdown plus the queue allowance.
        self.store.finish_attempt(
            run_id,
            step_id,
            attempt,
            "retrying",
            started_at=self.store.attempt_started_at(run_id, step_id, attempt),
            deadline_at=self.clock() + timedelta(seconds=countdown + self.settings.queue_timeout),
            level="WARNING",
            error=error,
            message=f"attempt {attempt} failed, retrying in {countdown:.1f}s: {error}",
        )

    def failed(self, run_id: str, step_id: str, attempt: int, error: str) -> None:
        error = redact(error) or ""
        self.store.finish_attempt(
            run_id,
            step_id,
            attempt,
            "failed",
            started_at=self.store.attempt_started_at(run_id, step_id, attempt),
            deadline_at=None,
            level="ERROR",
            error=error,
            message=f"attempt {attempt} failed: {error}",
        )
        self.runs.fail(run_id, f"step {step_id} failed: {error}")

    def finalize(self, run_id: str, org_slug: str | None = None) -> bool:
        done = self.runs.complete(run_id, org_slug)
        if done:
            StepLog(self.store, run_id, None, None).info("run completed")
        return done


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))

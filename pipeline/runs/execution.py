"""Executing one step attempt: the framework-free part of the Celery step task.

The task (tasks/steps.py) only maps outcomes to Celery: retry, fail, ignore.
Everything that touches records happens here, so --local and the workers run
the very same code.
"""

from __future__ import annotations

import contextvars
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from credentials.base import CredentialProvider
from pipeline.observability.lock_waits import lock_wait_reporter
from pipeline.observability.redact import redact
from pipeline.runs.fence import RunFence
from pipeline.runs.lineage import make_writer
from pipeline.runs.service import RunService
from pipeline.settings import Settings
from pipeline.storage import state
from pipeline.storage.base import RunStore
from pipeline.storage.records import PlannedStep, RunRecord
from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.statements import stored
from pipeline.subscriptions import SqlSubscriptionReader
from pipeline_ops_core.errors import (
    IllegalTransitionError,
    PipelineOpsError,
    RunCancelledError,
    TerminalError,
    TransientError,
)
from processors.base import SOURCE_READ_METRIC, StepContext
from processors.registry import get_processor
from warehouse.base import JobContext, LineageKey, Warehouse
from warehouse.scoped import OrgScopedWarehouse

logger = logging.getLogger("pipeline_ops.step")


class DependencyPending(TransientError):
    """A step was delivered before all of its dependencies completed."""


class DuplicateDelivery(PipelineOpsError):
    """Another live process is already executing this very attempt."""


class LostWorkersError(TerminalError):
    """The processes running this attempt kept dying (OOM-killed): it is not tried again."""


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
        message = stored(message, self.store.text_limit) or ""
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
    """Keeps the run's deadline and the attempt's claim ahead while the step works.

    It runs in a copy of the step's context, so what it logs is redacted with the
    step's secrets too.
    """

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        super().__init__(daemon=True, name="pipeline-ops-heartbeat")
        self._beat, self._interval, self._stop_event = beat, interval, threading.Event()
        self._context = contextvars.copy_context()

    def run(self) -> None:
        self._context.run(self._loop)

    def _loop(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                self._beat()
            except Exception:  # a missed beat is survivable; the next one may land
                logger.warning("heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()


# The step being executed in this process's main thread, for the signal handler.
_interruptible: CancelWatch | None = None
_INTERRUPT = signal.SIGUSR2


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    watch = _interruptible
    if watch is not None and watch.requested:
        raise RunCancelledError(f"run {watch.run_id} was cancelled; the step was stopped")


class CancelWatch:
    """Knows whether the step's run is being cancelled, and stops the step when it is.

    Three ways: `check()` (ctx.check_cancelled, called by long loops and every write)
    reads the run's status at most once a second; the heartbeat thread learns it on its
    next beat and calls `request()`; and `request()` interrupts the step's thread with a
    signal, so a step blocked in a read stops too (as Celery's soft time limit does). The
    signal only raises while the processor runs (`interruptible()`), never in the
    engine's own bookkeeping.
    """

    def __init__(self, store: RunStore, run_id: str, min_interval: float = 1.0) -> None:
        self.store, self.run_id, self.min_interval = store, run_id, min_interval
        self._event = threading.Event()
        self._last_read = time.monotonic()
        self._lock = threading.Lock()
        self._thread: int | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self._event.set()
        with self._lock:
            if self._thread is not None:
                signal.pthread_kill(self._thread, _INTERRUPT)

    def check(self) -> None:
        now = time.monotonic()
        if not self._event.is_set() and now - self._last_read >= self.min_interval:
            self._last_read = now
            if self.store.run_status(self.run_id) != state.RUNNING:
                self._event.set()
        if self._event.is_set():
            raise RunCancelledError(f"run {self.run_id} was cancelled; the step stopped")

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        global _interruptible
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(_INTERRUPT) is not _on_interrupt:
            signal.signal(_INTERRUPT, _on_interrupt)
        with self._lock:
            if main:
                self._thread, _interruptible = threading.get_ident(), self
        try:
            yield
        finally:
            with self._lock:
                if main:
                    self._thread, _interruptible = None, None


class StepExecutor:
    def __init__(
        self,
        settings: Settings,
        store: SqlRunStore,
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

    def load(self, run_id: str, step_id: str) -> tuple[RunRecord, PlannedStep]:
        """The run and the planned spec of one of its steps."""
        run = self.store.get_run(run_id)
        if run is None or run.plan is None:
            raise TerminalError(f"run {run_id} does not exist or has no plan")
        try:
            return run, run.plan.steps[step_id]
        except KeyError:
            raise TerminalError(f"run {run_id} has no step {step_id!r}") from None

    def run(
        self, run: RunRecord, step_id: str, attempt: int, task_id: str | None = None
    ) -> StepOutcome:
        run_id = run.run_id
        if run.status in state.TERMINAL:
            return StepOutcome("skipped", reason=f"run already {run.status}")
        if run.plan is None:
            raise TerminalError(f"run {run_id} has no plan")
        plan = run.plan
        states = self.store.attempt_states(run_id)
        completed = {step for step, _, status, _ in states if status == "completed"}
        # Steps a re-run from the failed step reuses count as done for their dependants.
        completed |= set(plan.reused)
        if step_id in completed:
            return StepOutcome("skipped", reason="step already completed")
        spec = plan.steps[step_id]
        pending = [d for d in spec.depends_on if d not in completed]
        if pending:
            raise DependencyPending(f"waiting for {', '.join(pending)} to complete", retry_after=2)

        mine = [(status, worker) for s, a, status, worker in states if (s, a) == (step_id, attempt)]
        holder = mine[0][1] if mine and mine[0][0] == "running" else None
        me = worker_identity()
        alive_for = self.settings.heartbeat_timeout
        try:
            claim = self.store.begin_attempt(
                run_id,
                step_id,
                attempt,
                exists=bool(mine),
                task_id=task_id,
                worker=me,
                alive_for=alive_for,
                steal_from=holder if holder_is_dead(holder) else None,
                message=f"attempt {attempt} started on {me} ({spec.ps_type})",
            )
        except IllegalTransitionError as exc:
            return StepOutcome("skipped", reason=str(exc))
        if claim is None:
            raise DuplicateDelivery(f"{step_id} attempt {attempt} is already running on {holder}")

        log = StepLog(self.store, run_id, step_id, attempt)
        limit = self.settings.max_lost_workers
        if claim.lost_workers:
            log.warning(
                f"attempt {attempt} was taken over: the process running it died "
                f"({claim.lost_workers} of {limit} lost workers allowed)"
            )
        if claim.lost_workers >= limit:
            # Redelivered after each death (acks_late), this step would kill worker after
            # worker forever, keeping its attempt number and pushing its deadline on.
            raise LostWorkersError(
                f"the worker was lost {claim.lost_workers} times running this step; out of "
                f"memory? (a step fails after PIPELINE_OPS_MAX_LOST_WORKERS={limit} lost workers)"
            )
        watch = CancelWatch(self.store, run_id)
        heartbeat = Heartbeat(
            lambda: self._beat(run, step_id, attempt, me, watch), self.settings.heartbeat_interval
        )
        heartbeat.start()
        try:
            with watch.interruptible():
                context = self._context(run, step_id, attempt, log, me, watch)
                result = get_processor(spec.ps_type).run(context)
        except RunCancelledError:
            raise
        except Exception as exc:
            # A step failing while its run is being cancelled (a read cut short, a write
            # refused and re-wrapped) has stopped because of the cancel.
            if watch.requested or self.store.run_status(run_id) == state.CANCELLING:
                raise RunCancelledError(f"run {run_id} was cancelled; the step stopped") from exc
            raise
        finally:
            heartbeat.stop()
        metrics = dict(result.metrics)
        if result.read is not None:
            # Stored with the attempt so the run's status can warn about an empty load.
            metrics[SOURCE_READ_METRIC] = result.read.as_json()
            if not result.read.rows_kept:
                found = result.read.describe(run.start_date, run.end_date)
                log.warning(f"nothing to load: {found}")
        # Until the next step starts, the run waits in the broker like a queued run.
        settled = self.store.finish_attempt(
            run_id,
            step_id,
            attempt,
            "completed",
            started_at=claim.started_at,
            deadline_in=self.settings.queue_timeout,
            level="INFO",
            message=f"completed: {result.rows_written} rows written",
            rows_written=result.rows_written,
            metrics=metrics,
        )
        if settled:
            self.runs.cancel_settled(run_id, run.org_slug)
        elif completed | {step_id} >= plan.steps.keys():
            # The last step completes the run itself, saving a broker hop; the
            # finalizer task at the end of the canvas remains the guarantee.
            self.finalize(run_id, run.org_slug)
        return StepOutcome("completed", result.rows_written, result.tables, result.metrics)

    def _beat(
        self, run: RunRecord, step_id: str, attempt: int, me: str, watch: CancelWatch
    ) -> None:
        alive_for = self.settings.heartbeat_timeout
        status = self.store.touch(run.run_id, alive_for)
        self.store.renew_claim(run.run_id, step_id, attempt, me, alive_for)
        self.runs.gate.heartbeat(run.org_slug, run.run_id)
        if status != state.RUNNING and not watch.requested:
            watch.request()

    def _context(
        self,
        run: RunRecord,
        step_id: str,
        attempt: int,
        log: StepLog,
        worker: str,
        watch: CancelWatch,
    ) -> StepContext:
        plan = run.plan
        assert plan is not None  # run() refused a run without one
        start, end = run.start_date, run.end_date
        key = LineageKey(run.org_slug, run.pipeline_id, run.credential_id, start, end)
        # Every change this step commits to the warehouse passes the run's fence.
        fence = RunFence(self.store.engine, run.run_id, step_id, attempt, worker)
        warehouse = self.warehouse_factory(
            on_lock_wait=lock_wait_reporter(log, self.settings.redis_url)
        ).fenced(fence)
        org, credential_id = run.org_slug, run.credential_id
        return StepContext(
            org_slug=org,
            run_id=run.run_id,
            pipeline_id=run.pipeline_id,
            step_id=step_id,
            attempt=attempt,
            start_date=start,
            end_date=end,
            config=plan.steps[step_id].config,
            dataset=plan.dataset,
            credential_id=credential_id,
            # The platform's identity, limited to this org's dataset (warehouse/scoped.py).
            # StepContext declares the full Warehouse; the scoped handle deliberately has
            # no fenced(), so a processor can't swap the run's fence.
            warehouse=OrgScopedWarehouse(warehouse, plan.dataset),  # type: ignore[arg-type]
            log=log,
            _credential_loader=lambda: self.credentials.get(org, credential_id),
            _writer=make_writer(
                warehouse,
                plan.dataset,
                key,
                run.run_id,
                self.clock,
                log,
                job_context=JobContext(run.run_id, step_id, attempt),
            ),
            readers={"subscriptions": SqlSubscriptionReader(self.store.engine)},
            _cancel_check=watch.check,
        )

    # -- outcomes the task reports ---------------------------------------------------------

    def retrying(
        self, run_id: str, step_id: str, attempt: int, error: str, countdown: float
    ) -> None:
        error = redact(error) or ""
        # The retry waits in the broker; give it its countdown plus the queue allowance.
        self._finished(
            run_id,
            step_id,
            attempt,
            "retrying",
            deadline_in=countdown + self.settings.queue_timeout,
            level="WARNING",
            error=error,
            message=f"attempt {attempt} failed, retrying in {countdown:.1f}s: {error}",
        )

    def failed(self, run_id: str, step_id: str, attempt: int, error: str) -> None:
        error = redact(error) or ""
        self._finished(
            run_id,
            step_id,
            attempt,
            "failed",
            deadline_in=None,
            level="ERROR",
            error=error,
            message=f"attempt {attempt} failed: {error}",
        )
        self.runs.fail(run_id, f"step {step_id} failed: {error}")

    def cancelled(self, run_id: str, step_id: str, attempt: int, reason: str) -> None:
        """The step stopped because its run is being cancelled (or ended)."""
        self._finished(
            run_id,
            step_id,
            attempt,
            state.CANCELLED,
            deadline_in=None,
            level="WARNING",
            error=reason,
            message=f"attempt {attempt} stopped: {reason}",
        )

    def _finished(
        self,
        run_id: str,
        step_id: str,
        attempt: int,
        status: str,
        *,
        deadline_in: float | None,
        level: str,
        error: str,
        message: str,
    ) -> None:
        settled = self.store.finish_attempt(
            run_id,
            step_id,
            attempt,
            status,
            started_at=self.store.attempt_started_at(run_id, step_id, attempt),
            deadline_in=deadline_in,
            level=level,
            error=error,
            message=message,
        )
        if settled:
            self.runs.cancel_settled(run_id)

    def finalize(self, run_id: str, org_slug: str | None = None) -> bool:
        done = self.runs.complete(run_id, org_slug)
        if done:
            StepLog(self.store, run_id, None, None).info("run completed")
        return done

"""Backfill: one run per date over a range, through RunService.start, N at a time.

Resumable by construction: dates whose one-day run already completed (for the same
org, pipeline and credential) are skipped, and a date whose run is still active from
an interrupted backfill is re-attached through the ConflictError the start raises.
A quota refusal (429) waits for its Retry-After, bounded, and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from pipeline.runs.service import RunRequest, RunService
from pipeline.storage import state
from pipeline.storage.queries import completed_dates, run_statuses
from pipeline_ops_core.errors import (
    ConflictError,
    QuotaExceededError,
    RunValidationError,
    TerminalError,
)

MAX_DATES = 3660
# One 429 wait is at most this long, and the total time spent waiting on the quota
# without a single start getting through is bounded too: then the backfill gives up.
MAX_QUOTA_SLEEP = 60.0
MAX_QUOTA_WAIT = 3600.0


class QuotaWaitExceeded(TerminalError):
    code = "quota_exceeded"


@dataclass
class Progress:
    total: int
    done: int = 0  # completed, including dates that had completed before
    already_done: int = 0
    running: int = 0
    failed: int = 0
    remaining: int = 0  # not started yet
    events: list[str] = field(default_factory=list)  # what changed since the last report

    def line(self) -> str:
        return (
            f"done {self.done}/{self.total}  running {self.running}  "
            f"failed {self.failed}  remaining {self.remaining}"
        )


def date_range(first: date, last: date) -> list[date]:
    if last < first:
        raise TerminalError(f"--end-date {last} is before --start-date {first}")
    days = (last - first).days + 1
    if days > MAX_DATES:
        raise TerminalError(f"the range has {days} dates; at most {MAX_DATES}")
    return [first + timedelta(days=n) for n in range(days)]


class Backfill:
    def __init__(
        self,
        runs: RunService,
        template: RunRequest,
        dates: list[date],
        concurrency: int = 1,
        *,
        force: bool = False,
        poll_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        start_guard: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        if concurrency < 1:
            raise TerminalError("--concurrency must be at least 1")
        self.runs, self.template, self.dates = runs, template, dates
        self.concurrency = concurrency
        # Re-run dates that already completed (corrected source data, a fixed procedure).
        self.force = force
        self.poll_seconds, self.sleep, self.monotonic = poll_seconds, sleep, monotonic
        # Held around each start: the CLI defers Ctrl-C there, since a run interrupted
        # between its row and its enqueue would sit `queued` until the reaper fails it.
        self.start_guard = start_guard
        self.failed_dates: dict[date, str] = {}

    def execute(self, report: Callable[[Progress], None]) -> Progress:
        t = self.template
        spec = self.runs.catalog.load(t.provider, t.domain, t.pipeline)  # NotFoundError early
        # The whole range, before the first start: a date the run service would refuse
        # must not leave the range half started.
        self.runs.check_dates(spec, min(self.dates), max(self.dates))
        credential = t.credential_id or "default"
        engine = self.runs.store.engine
        skip = (
            set()
            if self.force
            else completed_dates(engine, t.org_slug, spec.pipeline_id, credential, self.dates)
        )
        pending = [d for d in self.dates if d not in skip]
        active: dict[date, str] = {}
        progress = Progress(total=len(self.dates), done=len(skip), already_done=len(skip))
        if skip:
            progress.events.append(
                f"{len(skip)} date(s) already completed: skipped (--force runs them again)"
            )
        waited_since: float | None = None
        while pending or active:
            self._collect(active, progress)
            while pending and len(active) < self.concurrency:
                day = pending[0]
                try:
                    active[day] = self._start(day)
                    progress.events.append(f"{day} started: run {active[day]}")
                except ConflictError as exc:
                    active[day] = exc.existing_run_id
                    progress.events.append(f"{day} already running: run {exc.existing_run_id}")
                except RunValidationError as exc:
                    self._failed(day, progress, f"run {exc.run_id} failed validation: {exc}")
                except QuotaExceededError as exc:
                    waited_since = waited_since or self.monotonic()
                    if self.monotonic() - waited_since > MAX_QUOTA_WAIT:
                        raise QuotaWaitExceeded(
                            f"the quota refused every start for {MAX_QUOTA_WAIT:.0f}s: {exc}"
                        ) from exc
                    pause = min(float(max(exc.retry_after, 1)), MAX_QUOTA_SLEEP)
                    progress.events.append(f"quota: {exc}; waiting {pause:.0f}s")
                    self._report(report, progress, pending, active)
                    self.sleep(pause)
                    break
                else:
                    waited_since = None
                pending.pop(0)
            self._report(report, progress, pending, active)
            if active:
                self.sleep(self.poll_seconds)
        return progress

    def _start(self, day: date) -> str:
        request = replace(
            self.template,
            start_date=day,
            end_date=day,
            params=dict(self.template.params),
            trigger="backfill",
        )
        with self.start_guard():
            return self.runs.start(request).run_id

    def _collect(self, active: dict[date, str], progress: Progress) -> None:
        statuses = run_statuses(self.runs.store.engine, list(active.values()))
        for day, run_id in sorted(active.items()):
            status = statuses.get(run_id)
            if status not in state.TERMINAL:
                continue
            del active[day]
            if status == state.COMPLETED:
                progress.done += 1
                progress.events.append(f"{day} completed: run {run_id}")
            else:
                self._failed(day, progress, f"run {run_id} {status}")

    def _failed(self, day: date, progress: Progress, why: str) -> None:
        self.failed_dates[day] = why
        progress.failed += 1
        progress.events.append(f"{day} FAILED: {why}")

    def _report(
        self,
        report: Callable[[Progress], None],
        progress: Progress,
        pending: list[date],
        active: dict[date, str],
    ) -> None:
        progress.running, progress.remaining = len(active), len(pending)
        if progress.events:
            report(progress)
            progress.events = []

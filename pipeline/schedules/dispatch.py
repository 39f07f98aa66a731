"""Turning due schedule ticks into runs, once per (org, pipeline, scheduled time).

Beat calls `ScheduleDispatcher.tick()` every minute. Beat may run twice (a deploy),
and a tick task may be delivered twice, so nothing here trusts that it is alone: for
each due tick the dispatcher first inserts the dispatch record in its own transaction,
and only the process whose insert wins starts the run, through RunService.start (so
the quota applies). A refusal is recorded on that record as a skipped tick.

If the winner dies between its insert and the start, that tick stays `claimed` and is
not retried: at most once, never twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from pipeline.definition.catalog import PipelineCatalog
from pipeline.observability.redact import redact
from pipeline.runs.execution import worker_identity
from pipeline.runs.service import RunRequest, RunService
from pipeline.schedules.service import ScheduleStore, split_path, utc, zone
from pipeline_ops_core.errors import (
    ConflictError,
    PipelineOpsError,
    QuotaExceededError,
    RunValidationError,
    TransientError,
)

logger = logging.getLogger("pipeline_ops.schedules")

# Under catch-up `none`, a tick this close to now still counts as on time (not missed):
# beat fires every minute, and a busy worker may take a while to pick the task up.
ON_TIME_WINDOW = timedelta(minutes=5)


@dataclass
class TickReport:
    started: int = 0
    skipped: int = 0
    failed: int = 0
    duplicates: int = 0  # ticks another dispatcher claimed first
    passed_over: int = 0  # missed ticks the catch-up policy chose not to run
    errors: int = 0  # schedules that could not be evaluated at all

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def due_ticks(
    cron: str,
    timezone: str | None,
    after: datetime,
    now: datetime,
    catch_up: str = "latest",
    limit: int = 24,
) -> tuple[list[datetime], datetime | None]:
    """The ticks to run, oldest first, and the newest due tick (to advance last_tick to).

    Due ticks are those in (after, now]. They are walked backwards from now, so a long
    outage costs at most `limit` steps, never one step per missed minute.
    """
    after, now = utc(after), utc(now)
    # croniter's get_prev is strictly before its start; start just past now's second so
    # a tick at exactly now is due.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    it = croniter(cron, start.astimezone(zone(timezone)))
    newest = utc(it.get_prev(datetime))
    if newest <= after:
        return [], None
    if catch_up == "none":
        return ([newest] if now - newest <= ON_TIME_WINDOW else []), newest
    wanted = limit if catch_up == "all" else 1
    ticks = [newest]
    while len(ticks) < wanted:
        tick = utc(it.get_prev(datetime))
        if tick <= after:
            break
        ticks.append(tick)
    return sorted(ticks), newest


def count_between(cron: str, timezone: str | None, after: datetime, until: datetime) -> int:
    """How many ticks lie in (after, until]; for the report, bounded to stay cheap."""
    it = croniter(cron, utc(after).astimezone(zone(timezone)))
    count = 0
    while count < 10_000 and utc(it.get_next(datetime)) <= utc(until):
        count += 1
    return count


class ScheduleDispatcher:
    def __init__(
        self,
        store: ScheduleStore,
        catalog: PipelineCatalog,
        runs: RunService,
        clock: Callable[[], datetime] | None = None,
        identity: str | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.runs = runs
        self.clock = clock or store.clock
        self.identity = identity or worker_identity()

    @classmethod
    def for_runs(cls, runs: RunService, **kwargs: object) -> ScheduleDispatcher:
        store = ScheduleStore(runs.store.engine, runs.store.clock)
        return cls(store, runs.catalog, runs, **kwargs)  # type: ignore[arg-type]

    def tick(self, now: datetime | None = None) -> TickReport:
        now = utc(now or self.clock())
        report = TickReport()
        for schedule in self.store.list(enabled_only=True):
            try:
                self._dispatch(schedule, now, report)
            except Exception as exc:  # one broken schedule must not stop the others
                report.errors += 1
                logger.warning(
                    "schedule %s/%s not evaluated: %s",
                    schedule["org_slug"],
                    schedule["pipeline_path"],
                    redact(f"{type(exc).__name__}: {exc}"),
                    extra={"org_slug": schedule["org_slug"]},
                )
        return report

    def _dispatch(self, schedule: dict[str, Any], now: datetime, report: TickReport) -> None:
        org, path, tz = schedule["org_slug"], schedule["pipeline_path"], schedule["timezone"]
        cron = schedule["cron"] or self.catalog.load(*split_path(path)).schedule
        if not cron:
            raise PipelineOpsError(f"{path} has no cron: neither an override nor a YAML schedule")
        after = schedule["last_tick"] or schedule["created_at"]
        ticks, newest = due_ticks(
            cron, tz, after, now, schedule["catch_up"], schedule["catch_up_limit"]
        )
        if newest is None:
            return
        missed = count_between(cron, tz, after, newest) - len(ticks)
        if missed > 0:
            report.passed_over += missed
            logger.info(
                "%s/%s: %d missed tick(s) passed over (catch_up=%s)",
                org,
                path,
                missed,
                schedule["catch_up"],
                extra={"org_slug": org},
            )
        for tick in ticks:
            if not self.store.claim(org, path, tick, self.identity):
                report.duplicates += 1
                continue
            status, run_id, reason = self._start(schedule, tick)
            self.store.settle(org, path, tick, status, run_id, reason or None)
            setattr(report, status, getattr(report, status) + 1)
        self.store.advance(schedule["id"], newest)

    def _start(self, schedule: dict[str, Any], tick: datetime) -> tuple[str, str | None, str]:
        """Start the tick's run: (started|skipped|failed, run_id, reason)."""
        provider, domain, pipeline = split_path(schedule["pipeline_path"])
        # A scheduled run processes the UTC day before its tick, so a caught-up tick
        # covers its own day rather than today's.
        day = (tick.astimezone(UTC) - timedelta(days=1)).date()
        request = RunRequest(
            org_slug=schedule["org_slug"],
            provider=provider,
            domain=domain,
            pipeline=pipeline,
            start_date=day,
            end_date=day,
            credential_id=schedule["credential_id"],
            params={"scheduled_time": tick.isoformat()},
            trigger="schedule",
        )
        try:
            run = self.runs.start(request)
        except QuotaExceededError as exc:
            return "skipped", None, f"quota_exceeded (429, {exc.limit}): {exc}"
        except ConflictError as exc:
            return "skipped", exc.existing_run_id, f"run_active (409): {exc}"
        except RunValidationError as exc:
            return "failed", exc.run_id, redact(str(exc)) or ""
        except TransientError as exc:  # the broker or the database is down
            return "failed", None, redact(f"{exc.code}: {exc}") or ""
        except PipelineOpsError as exc:  # org or pipeline gone, subscription inactive (403)
            return "skipped", None, redact(f"{exc.code}: {exc}") or ""
        except Exception as exc:
            return "failed", None, redact(f"{type(exc).__name__}: {exc}") or ""
        return "started", run.run_id, ""

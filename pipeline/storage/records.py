"""The run records: what the run store returns and what every layer above it reads.

A run, its plan, its step attempts, transitions and log lines are frozen dataclasses
defined here, once. The store builds them from rows (`from_row`), and the plan, which is
a JSON column, is converted at that column only (`RunPlan.to_json` / `from_json`): parsed
once per load, so reading `run.plan.steps[step_id].timeout_seconds` costs an attribute
lookup. Presenters (API schemas, the CLI) turn records into response bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def as_date(value: date | datetime | str) -> date:
    """A DATE column's value as a date, whatever the driver returned (SQLite: a string)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def as_dict(record: Any) -> dict[str, Any]:
    """A record's fields as a dict, in declaration order, values as they are (not deep)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One step of a plan, with its templates resolved."""

    ps_type: str
    config: Mapping[str, Any]
    depends_on: tuple[str, ...]
    # Celery's soft limit (the processor is interrupted) and hard limit (the process is
    # killed): timeout_seconds plus the configured grace.
    timeout_seconds: int
    time_limit: int
    max_attempts: int
    backoff_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "ps_type": self.ps_type,
            "config": dict(self.config),
            "depends_on": list(self.depends_on),
            "timeout_seconds": self.timeout_seconds,
            "time_limit": self.time_limit,
            "max_attempts": self.max_attempts,
            "backoff_seconds": self.backoff_seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedStep:
        return cls(
            ps_type=data["ps_type"],
            config=data["config"],
            depends_on=tuple(data["depends_on"]),
            timeout_seconds=data["timeout_seconds"],
            time_limit=data["time_limit"],
            max_attempts=data["max_attempts"],
            backoff_seconds=data["backoff_seconds"],
        )


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The resolved pipeline a run executes: a snapshot taken at admission, so a config
    file edited mid-run can't change a run already admitted."""

    pipeline_id: str
    dataset: str
    # Topological levels: the steps of one level may run in parallel.
    levels: tuple[tuple[str, ...], ...]
    steps: Mapping[str, PlannedStep]
    # A re-run from the failed step: step_id -> the run whose output it reuses. These steps
    # stay in `steps` (so the run shows them) but are in no level: no task runs them.
    reused: Mapping[str, str] = field(default_factory=dict)
    # The run a re-run from the failed step re-runs; None for any other run.
    rerun_of: str | None = None

    def step_ids(self) -> list[str]:
        """Every step, in plan order: a re-run's reused steps (in no level) first."""
        reused = [step for step in self.steps if step in self.reused]
        return reused + [step for level in self.levels for step in level]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "pipeline_id": self.pipeline_id,
            "dataset": self.dataset,
            "levels": [list(level) for level in self.levels],
            "steps": {step_id: step.to_json() for step_id, step in self.steps.items()},
        }
        # Only a re-run from the failed step stores these keys.
        if self.reused or self.rerun_of is not None:
            data["reused"] = dict(self.reused)
            data["rerun_of"] = self.rerun_of
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunPlan:
        return cls(
            pipeline_id=data["pipeline_id"],
            dataset=data["dataset"],
            levels=tuple(tuple(level) for level in data["levels"]),
            steps={step_id: PlannedStep.from_json(s) for step_id, s in data["steps"].items()},
            reused=dict(data.get("reused") or {}),
            rerun_of=data.get("rerun_of"),
        )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A row of org_meta_pipeline_runs."""

    run_id: str
    org_slug: str
    pipeline_id: str
    pipeline_path: str
    status: str
    idempotency_key: str
    trigger: str
    credential_id: str
    start_date: date
    end_date: date
    params: Mapping[str, Any]
    # None until the run is admitted (and for a run that failed validation), and in the
    # records of `list_runs` and the reaper's scans, which don't read the plan column.
    plan: RunPlan | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    heartbeat_at: datetime | None
    deadline_at: datetime | None
    error_message: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> RunRecord:
        plan = row.get("plan")
        return cls(
            run_id=row["run_id"],
            org_slug=row["org_slug"],
            pipeline_id=row["pipeline_id"],
            pipeline_path=row["pipeline_path"],
            status=row["status"],
            idempotency_key=row["idempotency_key"],
            trigger=row["trigger"],
            credential_id=row["credential_id"],
            start_date=as_date(row["start_date"]),
            end_date=as_date(row["end_date"]),
            params=row["params"] or {},
            plan=RunPlan.from_json(plan) if plan else None,
            created_at=_utc(row["created_at"]),
            started_at=_utc_or_none(row.get("started_at")),
            ended_at=_utc_or_none(row.get("ended_at")),
            heartbeat_at=_utc_or_none(row.get("heartbeat_at")),
            deadline_at=_utc_or_none(row.get("deadline_at")),
            error_message=row.get("error_message"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The columns as a dict, in table order (the plan left a record), for presenters."""
        return as_dict(self)


@dataclass(frozen=True, slots=True)
class StepAttempt:
    """A row of org_meta_step_logs: one attempt of one step."""

    id: int
    run_id: str
    step_id: str
    attempt: int
    status: str
    task_id: str | None
    worker: str | None
    # The executing process renews this while it works (database clock).
    claimed_until: datetime | None
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    rows_written: int
    metrics: Mapping[str, Any] | None
    error: str | None
    # How many processes died while running this attempt.
    lost_workers: int

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> StepAttempt:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            step_id=row["step_id"],
            attempt=row["attempt"],
            status=row["status"],
            task_id=row["task_id"],
            worker=row["worker"],
            claimed_until=_utc_or_none(row["claimed_until"]),
            started_at=_utc(row["started_at"]),
            ended_at=_utc_or_none(row["ended_at"]),
            duration_ms=row["duration_ms"],
            rows_written=row["rows_written"] or 0,
            metrics=row["metrics"],
            error=row["error"],
            lost_workers=row["lost_workers"] or 0,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A row of org_meta_state_transitions: one status change of a run."""

    id: int
    run_id: str
    from_status: str | None
    to_status: str
    at: datetime
    reason: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Transition:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            from_status=row["from_status"],
            to_status=row["to_status"],
            at=_utc(row["at"]),
            reason=row["reason"],
        )


@dataclass(frozen=True, slots=True)
class LogLine:
    """A row of org_meta_run_log_lines."""

    id: int
    run_id: str
    ts: datetime
    level: str
    step_id: str | None
    attempt: int | None
    message: str

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> LogLine:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            ts=_utc(row["ts"]),
            level=row["level"],
            step_id=row["step_id"],
            attempt=row["attempt"],
            message=row["message"],
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A started attempt: when it started and how many processes died running it before."""

    started_at: datetime
    lost_workers: int = 0


@dataclass(frozen=True, slots=True)
class LostWorkerAttempt:
    """An attempt of an active run whose worker process died `lost_workers` times."""

    run_id: str
    org_slug: str
    step_id: str
    lost_workers: int

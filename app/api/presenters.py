"""Shaping run records for responses: step summaries, links, the NDJSON download."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from app.api.schemas import (
    LogLineSchema,
    RunSchema,
    StepAttemptSchema,
    TransitionSchema,
)
from pipeline.storage.records import LogLine, RunRecord, StepAttempt, Transition
from processors.base import SOURCE_READ_METRIC, SourceRead


def links(base_url: str, org_slug: str, run_id: str) -> dict[str, str]:
    return {
        "status": f"{base_url}/pipelines/status/{org_slug}/{run_id}",
        "logs": f"{base_url}/pipelines/logs/{org_slug}/{run_id}",
    }


def planned_steps(run: RunRecord) -> list[str]:
    return run.plan.step_ids() if run.plan is not None else []


def step_summary(run: RunRecord, attempts: list[StepAttempt]) -> list[dict[str, Any]]:
    """One entry per step, in plan order: latest attempt's status, attempt count, and the
    rows of the completed attempt. Planned steps that have not started are `pending`."""
    by_step: dict[str, list[StepAttempt]] = {}
    for attempt in attempts:
        by_step.setdefault(attempt.step_id, []).append(attempt)
    order = planned_steps(run)
    order += [step for step in by_step if step not in order]
    summary = []
    for step_id in order:
        tries = sorted(by_step.get(step_id, []), key=lambda a: a.attempt)
        done = [a for a in tries if a.status == "completed"]
        reused = run.plan is not None and step_id in run.plan.reused
        summary.append(
            {
                "step_id": step_id,
                "status": tries[-1].status if tries else ("reused" if reused else "pending"),
                "attempts": len(tries),
                "rows_written": done[-1].rows_written if done else None,
            }
        )
    return summary


def run_outcome(run: RunRecord, attempts: list[StepAttempt]) -> dict[str, Any]:
    """`rows_written` (the completed attempts' rows, all steps) and `warnings`: what a
    person should know about a run that looks fine, above all a load that found nothing."""
    completed = [a for a in attempts if a.status == "completed"]
    start, end = run.start_date, run.end_date
    warnings = []
    for attempt in completed:
        read = SourceRead.from_json((attempt.metrics or {}).get(SOURCE_READ_METRIC))
        warning = read.warning(start, end) if read is not None else None
        if warning:
            warnings.append(f"{warning}, step {attempt.step_id}")
    total = sum(int(a.rows_written or 0) for a in completed)
    if run.status == "completed" and not total and not warnings:
        warnings.append(f"the run completed but wrote no rows for {start}..{end}")
    return {"rows_written": total, "warnings": warnings}


def ndjson_records(
    run: RunRecord,
    attempts: list[StepAttempt],
    transitions: list[Transition],
    lines: list[LogLine],
) -> Iterator[str]:
    """The run, then its step attempts, transitions and log lines: one JSON object a line."""
    yield _line("run", RunSchema().dump(run.as_dict()))
    for attempt in StepAttemptSchema(many=True).dump(attempts):
        yield _line("step", attempt)
    for transition in TransitionSchema(many=True).dump(transitions):
        yield _line("transition", transition)
    for line in LogLineSchema(many=True).dump(lines):
        yield _line("line", line)


def _line(kind: str, record: dict[str, Any]) -> str:
    return json.dumps({"type": kind, **record}, separators=(",", ":")) + "\n"

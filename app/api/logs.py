"""A run's log lines, step attempts, transitions, and all of it as an NDJSON download."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from app.api.presenters import ndjson_records
from app.api.schemas import RunLogsSchema, StepAttemptsSchema, TransitionsSchema
from app.web.ext import find_run, services

bp = Blueprint("logs", __name__, url_prefix="/pipelines/logs")


@bp.get("/<org>/<run_id>")
def run_logs(org: str, run_id: str) -> dict[str, Any]:
    """The run and its log lines.
    ---
    get:
      summary: Run log lines, oldest first
      tags: [logs]
      security: [{ApiKeyAuth: []}]
      responses:
        200:
          description: The run and its lines.
          content: {application/json: {schema: RunLogsSchema}}
        401: Problem
        404: Problem
        422: Problem
    """
    run = find_run(org, run_id)
    lines = services().store.lines(run.run_id)
    return RunLogsSchema().dump({"run": run.as_dict(), "lines": lines})


@bp.get("/<org>/<run_id>/steps")
def run_steps(org: str, run_id: str) -> dict[str, Any]:
    """Every step attempt of the run.
    ---
    get:
      summary: Step attempts, in the order they started
      tags: [logs]
      security: [{ApiKeyAuth: []}]
      responses:
        200:
          description: The step attempts.
          content: {application/json: {schema: StepAttemptsSchema}}
        401: Problem
        404: Problem
        422: Problem
    """
    attempts = services().store.step_attempts(find_run(org, run_id).run_id)
    return StepAttemptsSchema().dump({"steps": attempts})


@bp.get("/<org>/<run_id>/transitions")
def run_transitions(org: str, run_id: str) -> dict[str, Any]:
    """Every status change of the run.
    ---
    get:
      summary: Status transitions, oldest first
      tags: [logs]
      security: [{ApiKeyAuth: []}]
      responses:
        200:
          description: The transitions.
          content: {application/json: {schema: TransitionsSchema}}
        401: Problem
        404: Problem
        422: Problem
    """
    transitions = services().store.transitions(find_run(org, run_id).run_id)
    return TransitionsSchema().dump({"transitions": transitions})


@bp.get("/<org>/<run_id>/download")
def run_download(org: str, run_id: str) -> Response:
    """The run, steps, transitions and lines as NDJSON.
    ---
    get:
      summary: Download everything recorded about a run, one JSON object per line
      tags: [logs]
      security: [{ApiKeyAuth: []}]
      responses:
        200:
          description: "Lines of type run, step, transition and line, in that order."
          content: {application/x-ndjson: {schema: {type: string}}}
        401: Problem
        404: Problem
        422: Problem
    """
    store = services().store
    run = find_run(org, run_id)
    run_id = run.run_id
    body = "".join(
        ndjson_records(
            run, store.step_attempts(run_id), store.transitions(run_id), store.lines(run_id)
        )
    )
    return Response(
        body,
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="run_{run_id}.ndjson"'},
    )

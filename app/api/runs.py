"""Run, cancel, status and history of pipeline runs. Auth is done by app.web.auth's hook."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api.presenters import links, run_outcome, step_summary
from app.api.schemas import (
    HistoryQuerySchema,
    HistorySchema,
    RerunRequestSchema,
    RunAcceptedSchema,
    RunRequestSchema,
    RunStatusSchema,
    encode_cursor,
)
from app.web.body import json_body
from app.web.ext import find_run, services
from pipeline.runs.service import RunRequest
from pipeline.storage.records import RunRecord

bp = Blueprint("pipelines", __name__, url_prefix="/pipelines")


def _accepted(run: RunRecord) -> Response:
    run_links = links(services().settings.public_base_url, run.org_slug, run.run_id)
    body = RunAcceptedSchema().dump({**run.as_dict(), "links": run_links})
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = run_links["status"]
    return response


@bp.post("/run/<org>/<provider>/<domain>/<pipeline>")
def run_pipeline(org: str, provider: str, domain: str, pipeline: str) -> Response:
    """Start a pipeline run.
    ---
    post:
      summary: Start a run of configs/[category/]{provider}/{domain}/{pipeline}.yml
      tags: [runs]
      security: [{ApiKeyAuth: []}]
      requestBody:
        required: false
        content: {application/json: {schema: RunRequestSchema}}
      responses:
        202:
          description: The run was admitted, validated and enqueued.
          content: {application/json: {schema: RunAcceptedSchema}}
        400: Problem
        401: Problem
        403: Problem
        404: Problem
        409: Problem
        413: Problem
        415: Problem
        422: Problem
        429: Problem
        503: Problem
    """
    svc = services()
    svc.catalog.path_for(provider, domain, pipeline)  # 404 before the body is read
    body = json_body(RunRequestSchema())
    run = svc.runs.start(RunRequest(org, provider, domain, pipeline, **body, trigger="api"))
    return _accepted(run)


@bp.post("/cancel/<org>/<run_id>")
def cancel_run(org: str, run_id: str) -> Response:
    """Cancel an active run.
    ---
    post:
      summary: Cancel a run; its pending tasks are revoked and it ends `cancelled`
      tags: [runs]
      security: [{ApiKeyAuth: []}]
      responses:
        202:
          description: The run is cancelled.
          content: {application/json: {schema: RunAcceptedSchema}}
        401: Problem
        404: Problem
        422: Problem
        409: Problem
    """
    return _accepted(services().runs.cancel(org, find_run(org, run_id).run_id))


@bp.get("/status/<org>/<run_id>")
def run_status(org: str, run_id: str) -> dict[str, Any]:
    """A run's status and a summary of its steps.
    ---
    get:
      summary: Run status with one entry per planned step
      tags: [runs]
      security: [{ApiKeyAuth: []}]
      responses:
        200:
          description: The run.
          content: {application/json: {schema: RunStatusSchema}}
        401: Problem
        404: Problem
        422: Problem
    """
    run = find_run(org, run_id)
    attempts = services().store.step_attempts(run.run_id)
    steps = step_summary(run, attempts)
    return RunStatusSchema().dump({**run.as_dict(), **run_outcome(run, attempts), "steps": steps})


@bp.get("/history/<org>")
def run_history(org: str) -> dict[str, Any]:
    """The org's runs, newest first.
    ---
    get:
      summary: Keyset-paginated run history, newest first
      tags: [runs]
      security: [{ApiKeyAuth: []}]
      parameters: [{in: query, schema: HistoryQuerySchema}]
      responses:
        200:
          description: One page of runs; `next_cursor` is null on the last page.
          content: {application/json: {schema: HistorySchema}}
        401: Problem
        404: Problem
        422: Problem
    """
    query = HistoryQuerySchema().load(request.args.to_dict())
    limit = query.pop("limit")
    rows = services().store.list_runs(org, limit=limit + 1, **query)
    page = rows[:limit]
    cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    runs = [run.as_dict() for run in page]
    return HistorySchema().dump({"runs": runs, "next_cursor": cursor})


@bp.post("/rerun/<org>/<run_id>")
def rerun(org: str, run_id: str) -> Response:
    """Run a run again: the same pipeline, dates, credential and params.
    ---
    post:
      summary: Start a new run of a run's key; with from_failed, reuse its completed steps
      tags: [runs]
      security: [{ApiKeyAuth: []}]
      requestBody:
        required: false
        content: {application/json: {schema: RerunRequestSchema}}
      responses:
        202:
          description: The new run was admitted and enqueued.
          content: {application/json: {schema: RunAcceptedSchema}}
        401: Problem
        404: Problem
        409: Problem
        422: Problem
        429: Problem
        503: Problem
    """
    source = find_run(org, run_id).run_id
    body = json_body(RerunRequestSchema())
    return _accepted(services().runs.rerun(org, source, from_failed=body["from_failed"]))

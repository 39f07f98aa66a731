"""Access to the service graph that create_app() stored on the Flask app."""

from __future__ import annotations

from flask import current_app

from pipeline.bootstrap import Services
from pipeline.storage.records import RunRecord
from pipeline_ops_core.errors import NotFoundError

EXTENSION = "pipeline_ops"


def services() -> Services:
    return current_app.extensions[EXTENSION]


def find_run(org_slug: str, run_id: str) -> RunRecord:
    """The org's run by its id or a unique prefix of it, or NotFoundError: another org's
    run looks exactly like a missing one."""
    store = services().store
    run = store.get_run(store.resolve_run_id(run_id, org_slug), org_slug=org_slug)
    if run is None:
        raise NotFoundError(f"run {run_id} not found")
    return run

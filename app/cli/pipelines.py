"""`pipeline-ops pipelines list|show`: the pipelines of the configs directory."""

from __future__ import annotations

from typing import Any

import click

from app.cli.output import echo_json, echo_table, wants_json
from app.cli.support import EXIT_USAGE, fail
from pipeline.bootstrap import cli_services
from pipeline_ops_core.errors import PipelineOpsError


def _summary(key: tuple[str, str, str], spec: Any) -> dict[str, Any]:
    return {
        "path": "/".join(key),
        "pipeline_id": spec.pipeline_id,
        "name": spec.name,
        "provider": spec.provider,
        "domain": spec.domain,
        "schedule": spec.schedule,
        "steps": [step.step_id for step in spec.steps],
    }


@click.group()
def pipelines() -> None:
    """The pipelines runs can be started for."""


@pipelines.command("list")
def pipelines_list() -> None:
    """Every pipeline under the configs directory, as PROVIDER/DOMAIN/PIPELINE."""
    catalog = cli_services().catalog
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    keys = catalog.keys()  # sorted (provider, domain, pipeline), not a dict view
    for key in keys:
        try:
            rows.append(_summary(key, catalog.load(*key)))
        except PipelineOpsError as exc:  # one broken file does not hide the others
            problems.append(f"{'/'.join(key)}: {exc}")
    if wants_json():
        echo_json({"pipelines": rows, "problems": problems})
    else:
        echo_table(rows, ["path", "pipeline_id", "schedule", "name"], empty="(no pipelines)")
        for problem in problems:
            click.echo(f"error: {problem}", err=True)


@pipelines.command("show")
@click.argument("path", metavar="PROVIDER/DOMAIN/PIPELINE")
def pipelines_show(path: str) -> None:
    """One pipeline: its steps (ps_type), dependencies and schedule."""
    parts = path.strip("/").split("/")
    if len(parts) != 3:
        fail("pipeline must be PROVIDER/DOMAIN/PIPELINE, e.g. demo/sample/genai_usage", EXIT_USAGE)
    key = (parts[0], parts[1], parts[2])
    try:
        spec = cli_services().catalog.load(*key)
    except PipelineOpsError as exc:
        fail(str(exc))
    body = {
        **_summary(key, spec),
        "description": spec.description,
        "version": spec.version,
        "accepts_future_dates": spec.accepts_future_dates,
        "steps": [
            {
                "step_id": step.step_id,
                "ps_type": step.ps_type,
                "depends_on": list(step.depends_on),
                "timeout_seconds": step.timeout_seconds,
            }
            for step in spec.steps
        ],
    }
    if wants_json():
        echo_json(body)
        return
    for key_ in ("path", "pipeline_id", "name", "description", "schedule", "version"):
        if body.get(key_):
            click.echo(f"{key_ + ':':<13}{body[key_]}")
    echo_table(
        body["steps"],
        ["step_id", "ps_type", "depends_on", "timeout_seconds"],
        formats={"depends_on": lambda v: ", ".join(v) or "-"},
    )

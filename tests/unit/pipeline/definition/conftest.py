"""Fixtures for the pipeline config tests.

Helpers are exposed as fixtures rather than imported, so the tests work under any
pytest import mode.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

VALID_YAML = textwrap.dedent(
    """\
    pipeline_id: genai_openai_payg
    name: OpenAI pay-as-you-go usage and cost
    description: Pulls usage, prices it, unifies it.
    provider: openai
    domain: payg
    version: "1.2.0"
    schedule: "0 3 * * *"
    steps:
      - step_id: extract_usage
        ps_type: generic.http_extract
        config:
          destination_table: genai_payg_usage_raw
          url: "https://usage.example.com/v1?start=${start_date}&dataset={org_slug}_prod"
        timeout_seconds: 900
        retry: {max_attempts: 5, backoff_seconds: 10}
      - step_id: extract_models
        ps_type: generic.file_extract
        config: {path: models.csv, destination_table: models}
      - step_id: calculate
        ps_type: generic.noop
        depends_on: [extract_usage, extract_models]
        description: joins usage with prices
      - step_id: unify
        ps_type: generic.procedure_executor
        depends_on: [calculate]
        config:
          procedure: sp_convert_to_focus
          args: {p_date: "${start_date}", p_provider: openai, p_run: ["${run_id}", 3]}
    """
)


def pipeline_yaml(steps: str, **top: str) -> str:
    """A minimal valid header plus the given `steps:` block (already indented)."""
    header = {
        "pipeline_id": "demo_pipeline",
        "name": "Demo",
        "provider": "openai",
        "domain": "payg",
    }
    header.update(top)
    lines = [f"{key}: {value}" for key, value in header.items()]
    return "\n".join(lines) + "\nsteps:\n" + textwrap.dedent(steps)


def one_step(extra: str = "") -> str:
    """A single valid step, with `extra` lines (dedented YAML) added to it."""
    body = "- step_id: only\n  ps_type: generic.noop\n"
    for line in textwrap.dedent(extra).splitlines():
        body += f"  {line}\n"
    return body


@pytest.fixture
def yml() -> SimpleNamespace:
    """yml.valid (a full valid pipeline), yml.pipeline(steps, **top), yml.step(extra)."""
    return SimpleNamespace(valid=VALID_YAML, pipeline=pipeline_yaml, step=one_step)


@pytest.fixture
def write(tmp_path: Path):
    """write("a/b/c.yml", text) -> the created path under tmp_path."""

    def _write(relative: str, text: str = VALID_YAML) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write

"""Pipeline files, test doubles and assertions shared by the API tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from werkzeug.test import TestResponse

from pipeline.bootstrap import Services
from tests.support.doubles import RecordingDispatcher
from tests.support.records import count_runs

ADMIN_KEY = "admin-key-for-the-tests-0123456789"
ADMIN = {"X-Admin-Key": ADMIN_KEY}
PROBLEM = "application/problem+json"

BASIC = """\
pipeline_id: test_demo_basic
name: Basic test pipeline
provider: test
domain: demo
steps:
  - step_id: extract
    ps_type: generic.file_extract
    config: {path: "usage_${start_date}.csv", destination_table: raw_rows}
  - step_id: noop_a
    ps_type: generic.noop
    depends_on: [extract]
  - step_id: noop_b
    ps_type: generic.noop
    depends_on: [extract]
  - step_id: unify
    ps_type: generic.procedure_executor
    depends_on: [noop_a, noop_b]
    config: {procedure: sp_convert_to_focus, args: {p_date: "${start_date}"}}
"""

SINGLE = """\
pipeline_id: generic_demo_single
name: One noop step
provider: generic
domain: demo
steps:
  - step_id: only
    ps_type: generic.noop
"""

# A pipeline of a registered provider, for runs that use a vault credential of it.
OPENAI_NOOP = """\
pipeline_id: openai_demo_noop
name: One noop step of provider openai
provider: openai
domain: demo
steps:
  - step_id: only
    ps_type: generic.noop
"""

MALFORMED = "pipeline_id: broken\nsteps: [unclosed\n"

UNKNOWN_TYPE = """\
pipeline_id: test_bad_unknown_type
name: Unknown processor
provider: test
domain: bad
steps:
  - step_id: extract
    ps_type: generic.does_not_exist
"""

CYCLE = """\
pipeline_id: test_bad_cycle
name: A cycle
provider: test
domain: bad
steps:
  - step_id: a
    ps_type: generic.noop
    depends_on: [b]
  - step_id: b
    ps_type: generic.noop
    depends_on: [a]
"""

UNKNOWN_VAR = """\
pipeline_id: test_bad_unknown_var
name: Unknown template variable
provider: test
domain: bad
steps:
  - step_id: call
    ps_type: generic.procedure_executor
    config: {procedure: sp_x, args: {p_date: "${yesterday}"}}
"""

PIPELINES = {
    "test/demo/basic.yml": BASIC,
    "cloud/generic/demo/single.yml": SINGLE,
    "openai/demo/noop.yml": OPENAI_NOOP,
    "test/bad/malformed.yml": MALFORMED,
    "test/bad/unknown_type.yml": UNKNOWN_TYPE,
    "test/bad/cycle.yml": CYCLE,
    "test/bad/unknown_var.yml": UNKNOWN_VAR,
}

RUN_URL = "/pipelines/run/acme/test/demo/basic"
SINGLE_URL = "/pipelines/run/acme/generic/demo/single"
OPENAI_URL = "/pipelines/run/acme/openai/demo/noop"


def write_pipelines(root: Path) -> Path:
    for relative, text in PIPELINES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body  # type: ignore[no-any-return]


def assert_nothing_recorded(services: Services, dispatcher: RecordingDispatcher) -> None:
    assert count_runs(services.store) == 0
    assert dispatcher.enqueued == []

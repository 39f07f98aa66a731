"""`pipeline-ops runs rerun` and the run commands as a subprocess against a real worker:
the re-run is a new run of the same pipeline, dates, credential and parameters, and the
worker completes it; `runs list|show --output json` print the API's shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from pipeline.runs.service import RunRequest
from tests.integration.conftest import Stack, write_pipeline
from tests.support.servers import ROOT

PIPELINE_OPS = os.path.join(os.path.dirname(sys.executable), "pipeline-ops")
ORG = "rerunner"
NOOP = """\
pipeline_id: test_rerun_noop
name: Does nothing
provider: rerun
domain: test
steps:
  - step_id: work
    ps_type: generic.noop
"""


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE_OPS, *args], env={**os.environ, **stack.env}, cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


def test_rerun_starts_the_same_work_and_the_worker_completes_it(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    write_pipeline(stack, "rerun/test/noop", NOOP)
    stack.services.orgs.create(ORG)
    day = date(2026, 2, 3)
    request = RunRequest(ORG, "rerun", "test", "noop", day, day, params={"note": "first"})
    first = stack.wait(stack.services.runs.start(request).run_id)
    assert first.status == "completed"

    rerun = cli(stack, "--output", "json", "runs", "rerun", first.run_id[:8], "--org", ORG)

    assert rerun.returncode == 0, rerun.stderr
    body = json.loads(rerun.stdout)
    assert body["rerun_of"] == first.run_id and body["run_id"] != first.run_id
    second = stack.wait(body["run_id"])
    assert second.status == "completed"
    for key in ("pipeline_id", "start_date", "end_date", "credential_id", "params", "org_slug"):
        assert getattr(second, key) == getattr(first, key), key
    assert second.trigger == "rerun"

    listed = cli(stack, "--output", "json", "runs", "list", "--org", ORG)
    assert listed.returncode == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [
        body["run_id"],
        first.run_id,
    ]
    shown = cli(stack, "--output", "json", "runs", "show", body["run_id"], "--org", ORG)
    assert json.loads(shown.stdout)["steps"] == [
        {"step_id": "work", "status": "completed", "attempts": 1, "rows_written": 0}
    ]

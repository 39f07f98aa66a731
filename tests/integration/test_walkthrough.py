"""README, "Run it for real", steps 2-4 as written: `samples serve`, then the terminal-3
commands (an org, the printed `credentials add`, a run of the OpenAI pipeline over HTTP with
curl, following it, `status` by prefix, the logs), then the FOCUS query on DuckDB.

The commands are read from the README and run with bash; the only changes are the ports
and paths of this test (8001 -> the web port, 8765 -> a free port, var/ -> a temp dir).
Step 1 (redis-server and `make up`) is stood in for by a redis-server of this test and the
Procfile's web and worker lines, started as written with step 1's exports
(test_procfile.py runs `make up` itself).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.support.procfile import (
    documented_env,
    left_running,
    pipeline_ops,
    procfile_lines,
    start_line,
    up,
)
from tests.support.servers import ROOT, Server, free_port, start_redis

README = ROOT / "README.md"
WEB, SAMPLES = "http://127.0.0.1:8001", "8765"


def walkthrough_blocks() -> list[str]:
    """The fenced code blocks of the README section "Run it for real", dedented."""
    text = README.read_text()
    section = text.split("## Run it for real\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^( *)```sh\n(.*?)^\1```", section, re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(body) for _indent, body in blocks]


@dataclass
class Machine:
    env: dict[str, str]
    web_url: str
    samples_port: int
    samples_output: list[str]
    tmp: Path

    def as_here(self, script: str) -> str:
        """A README command with this test's ports and paths."""
        return (
            script.replace(WEB, self.web_url)
            .replace(f"127.0.0.1:{SAMPLES}", f"127.0.0.1:{self.samples_port}")
            .replace(f"--port {SAMPLES}", f"--port {self.samples_port}")
            .replace("var/warehouse.duckdb", str(self.tmp / "warehouse.duckdb"))
        )

    def bash(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.as_here(script)],
            env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    tmp = tmp_path_factory.mktemp("walkthrough")
    redis = start_redis()
    port = free_port()
    # As step 1 exports it for `make up`: the worker may connect to the samples server.
    env = {**documented_env(tmp, redis.url), "PIPELINE_OPS_EGRESS_ALLOW": f"127.0.0.1:{port}"}
    lines = procfile_lines()
    started: list[Server] = []
    samples: subprocess.Popen[str] | None = None
    try:
        boot = pipeline_ops(env, "bootstrap")
        assert boot.returncode == 0, boot.stderr
        web, worker = (start_line(n, lines[n], env, tmp) for n in ("web", "worker"))
        started += [web, worker]
        web_url = f"http://127.0.0.1:{env['PORT']}"
        up(web, lambda: httpx.get(f"{web_url}/health", timeout=2).status_code == 200)
        up(worker, lambda: "ready." in worker.log())
        step2 = walkthrough_blocks()[1]
        here = Machine(env, web_url, port, [], tmp)
        samples = subprocess.Popen(
            ["bash", "-c", here.as_here(step2)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert samples.stdout is not None
        for line in samples.stdout:
            here.samples_output.append(line.rstrip("\n"))
            if "pipeline-ops run genai/payg/openai" in line:
                break
        yield here
    finally:
        if samples is not None:
            samples.send_signal(signal.SIGINT)  # Ctrl-C, as the output says
            samples.wait(timeout=15)
        for server in started:
            server.stop()
        redis.stop()
    assert samples.returncode == 0
    assert left_running(tmp) == []


def test_samples_serve_prints_the_credentials_add_commands_the_readme_shows(
    machine: Machine,
) -> None:
    printed = [line.strip() for line in machine.samples_output]
    step3 = machine.as_here(walkthrough_blocks()[2])

    adds = [line for line in printed if "pipeline-ops credentials add" in line]
    assert [a.split(" | ")[1] for a in adds] == [
        "pipeline-ops credentials add --org acme openai --name openai_samples --id openai_sample "
        "--file -",
        "pipeline-ops credentials add --org acme anthropic --name anthropic_samples "
        "--id anthropic_sample --file -",
    ]
    assert f'"base_url": "http://127.0.0.1:{machine.samples_port}/openai"' in adds[0]
    assert f"export PIPELINE_OPS_EGRESS_ALLOW=127.0.0.1:{machine.samples_port}" in printed
    # The README's step 3 uses exactly the printed OpenAI command.
    assert adds[0] in step3.splitlines()


def test_the_walkthrough_runs_the_openai_pipeline_over_http_to_completion(
    machine: Machine,
) -> None:
    step3, step4 = walkthrough_blocks()[2:4]

    result = machine.bash(step3 + "\n" + step4)

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "stored credential 'openai_sample' for acme (openai)" in out
    assert "\ncompleted\n" in out  # the follow loop's last line
    assert re.search(r"^status:    completed$", out, re.MULTILINE), out
    assert re.search(r"^rows:      [1-9]\d*$", out, re.MULTILINE), out
    assert "warning:" not in out
    assert '"lines"' in out and "openai: extracted" in out  # the run log, by id prefix
    # Step 4: spend from the FOCUS table, printed by DuckDB.
    assert "ProviderName" in out and "OpenAI" in out
    con = duckdb.connect(str(machine.tmp / "warehouse.duckdb"), read_only=True)
    try:
        billed = con.execute(
            "SELECT SUM(BilledCost) FROM acme_dev.cost_data_standard_1_3 "
            "WHERE ProviderName = 'OpenAI'"
        ).fetchone()
    finally:
        con.close()
    assert billed is not None and billed[0] > 0


def test_demo_genai_help_says_what_it_does() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/demo_genai.py", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "The GenAI part of `make demo`" in text
    assert "usage for 2026-01-01..2026-01-07" in text
    assert "`pipeline-ops samples serve`" in text
    assert "--port PORT" in text

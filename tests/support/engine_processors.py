"""Processors that play a hostile tenant's step, for the engine-safeguard tests only.

They are registered in the test process (`register()`) and in the worker subprocess the
tests start with `-A tests.support.engine_app`; the engine itself is the real one.

- `test.kill_self`: SIGKILLs its own worker process on every delivery (the OOM killer).
- `test.slow_pages`: fetches pages from a loopback server that answers when the test lets
  it, ignoring cancel requests while it waits (a step stuck in native code), then writes.
- `test.echo_credential`: logs and fails with text built from the decrypted credential.
- `test.huge_error`: fails with an error text of `error_bytes` bytes.
- `test.flaky`: a transient failure on attempts before `succeed_on`, then success (retries).
- `test.needs_file`: fails (terminally) until the file `path` exists; then writes one row.
"""

from __future__ import annotations

import os
import signal
from typing import ClassVar

import httpx
import pyarrow as pa

from pipeline_ops_core.errors import RunCancelledError, TerminalError, TransientError
from processors.base import StepContext, StepResult
from processors.registry import REGISTRY

ENTRIES = {
    "test.kill_self": "tests.support.engine_processors:KillSelf",
    "test.slow_pages": "tests.support.engine_processors:SlowPages",
    "test.echo_credential": "tests.support.engine_processors:EchoCredential",
    "test.huge_error": "tests.support.engine_processors:HugeError",
    "test.flaky": "tests.support.engine_processors:Flaky",
    "test.needs_file": "tests.support.engine_processors:NeedsFile",
}


def register() -> None:
    REGISTRY.update(ENTRIES)


class KillSelf:
    ps_type: ClassVar[str] = "test.kill_self"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.log.info(f"about to be killed (pid {os.getpid()})")
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


class SlowPages:
    ps_type: ClassVar[str] = "test.slow_pages"

    def run(self, ctx: StepContext) -> StepResult:
        url, pages = str(ctx.config["url"]), int(ctx.config.get("pages", 3))
        rows: list[dict[str, object]] = []
        for page in range(1, pages + 1):
            while True:
                try:
                    answer = httpx.get(f"{url}/page/{page}", timeout=60)
                    break
                except RunCancelledError:
                    ctx.log.warning("cancel noticed while fetching; not stopping (stubborn)")
            rows += answer.json()["data"]
        ctx.log.info(f"fetched {len(rows)} rows in {pages} pages")
        table = pa.Table.from_pylist(rows).set_column(
            0, "day", pa.array([r["day"] for r in rows], pa.string()).cast(pa.date32())
        )
        result = ctx.write("slow_pages_rows", table, date_column="day")
        return StepResult(rows_written=result.rows_written, tables=[result.table])


class EchoCredential:
    ps_type: ClassVar[str] = "test.echo_credential"

    def run(self, ctx: StepContext) -> StepResult:
        credential = ctx.credential()
        text = " | ".join(f"{k}={v}" for k, v in sorted(credential.items()))
        ctx.log.info(f"credential fields: {text}")
        raise TerminalError(f"provider rejected the request: {text}")


class HugeError:
    ps_type: ClassVar[str] = "test.huge_error"

    def run(self, ctx: StepContext) -> StepResult:
        size = int(ctx.config["error_bytes"])
        body = ("provider answer " * (size // 16 + 1))[:size]
        ctx.log.error(f"provider said: {body}")
        raise TerminalError(f"HTTP 500 from provider: {body}")


class Flaky:
    ps_type: ClassVar[str] = "test.flaky"

    def run(self, ctx: StepContext) -> StepResult:
        if ctx.attempt < int(ctx.config.get("succeed_on", 2)):
            raise TransientError(f"provider busy (attempt {ctx.attempt})", retry_after=1)
        ctx.log.info(f"succeeded on attempt {ctx.attempt}")
        return StepResult()


class NeedsFile:
    ps_type: ClassVar[str] = "test.needs_file"

    def run(self, ctx: StepContext) -> StepResult:
        path = str(ctx.config["path"])
        if not os.path.exists(path):
            raise TerminalError("the source file is not there yet")
        table = pa.table({"day": pa.array([ctx.start_date], pa.date32()), "n": [1]})
        result = ctx.write("needs_file_rows", table, date_column="day")
        return StepResult(rows_written=result.rows_written, tables=[result.table])

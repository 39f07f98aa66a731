"""A racer process for the quota tests: `python -m tests.integration.quota_racer ORG PREFIX N`.

It builds the quota gate from the environment (DATABASE_URL, REDIS_URL), warms it up,
prints `ready`, waits for a line on stdin, then makes N reservations at once from N
threads and prints a JSON object run_id -> "admitted" | the refused limit | "error: …".
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime

from pipeline.settings import Settings
from pipeline.storage.db import make_engine
from pipeline_ops_core.errors import QuotaExceededError
from quota.factory import build_ledger_gate


def main() -> None:
    org, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings.from_env()
    gate = build_ledger_gate(
        settings, make_engine(settings.database_url), lambda: datetime.now(UTC)
    )
    gate.usage(org)  # connections, plan cache and the Redis pool are ready before the start
    print("ready", flush=True)
    sys.stdin.readline()
    barrier = threading.Barrier(count)
    results: dict[str, str] = {}

    def attempt(i: int) -> None:
        run_id = f"{prefix}-{i}"
        barrier.wait()
        try:
            gate.reserve(org, run_id)
            results[run_id] = "admitted"
        except QuotaExceededError as exc:
            results[run_id] = exc.limit
        except Exception as exc:  # reported, so the test shows it instead of a count
            results[run_id] = f"error: {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()

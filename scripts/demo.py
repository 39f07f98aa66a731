"""`make demo`: one real run on the embedded defaults, end to end.

Bootstraps var/ (SQLite metadata DB, DuckDB warehouse), creates a demo org,
starts redis-server, a Celery worker and the API (gunicorn), triggers the demo
pipeline over HTTP, follows it, prints what happened and what landed, then stops
everything it started. Without redis-server it says how to install it and runs
the same task code in-process instead (the CLI's --local mode).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demo_genai  # noqa: E402  (scripts/demo_genai.py, beside this file)

PIPELINE = ("demo", "sample", "genai_usage")
START, END = "2026-01-01", "2026-01-07"
ORG = "demo_org"
GENAI = (ORG, START, END)  # the GenAI part of the demo: org and dates


def say(message: str = "") -> None:
    print(message, flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_api_key(services) -> str:  # type: ignore[no-untyped-def]
    """The demo org's API key, kept in var/ (mode 0600) so `make demo` can run again."""
    orgs = services.orgs
    key_file = services.settings.var_dir / "demo_api_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if orgs.authenticate(key) == ORG:
            return key
    if orgs.store.get_org(ORG) is not None:
        raise SystemExit(
            f"org {ORG!r} exists but its key file {key_file} is gone; run `make clean` first"
        )
    key = orgs.create(ORG, "Demo organization")
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    say(f"created org {ORG} (its API key is saved in {key_file})")
    return key


def print_report(services, run: dict, steps: list[dict]) -> None:  # type: ignore[type-arg, no-untyped-def]
    settings = services.settings
    say()
    say(
        f"run {run['run_id']}: {run['status']}"
        + (f" in {run['duration_ms']} ms" if run.get("duration_ms") is not None else "")
    )
    if run.get("error_message"):
        say(f"error: {run['error_message']}")
    say(f"{'step':<16} {'status':<10} {'attempts':>8} {'duration':>10} {'rows':>6}")
    for step in steps:
        duration = f"{step['duration_ms']} ms" if step.get("duration_ms") is not None else "-"
        say(
            f"{step['step_id']:<16} {step['status']:<10} {step['attempts']:>8} "
            f"{duration:>10} {step['rows_written']:>6}"
        )
    dataset = settings.org_dataset(ORG)
    sample = (
        services.warehouse()
        .query(
            f"SELECT usage_date, provider, model, requests, ROUND(cost_usd, 4) AS cost_usd, "
            f"x_run_id FROM `{dataset}.demo_daily_cost` "
            "WHERE x_org_slug = @org ORDER BY usage_date, provider, model LIMIT 6",
            {"org": ORG},
        )
        .to_pylist()
    )
    totals = (
        services.warehouse()
        .query(
            f"SELECT provider, SUM(requests) AS requests, ROUND(SUM(cost_usd), 2) AS cost_usd "
            f"FROM `{dataset}.demo_daily_cost` WHERE x_org_slug = @org "
            "GROUP BY provider ORDER BY cost_usd DESC",
            {"org": ORG},
        )
        .to_pylist()
    )
    say()
    say(f"sample of {dataset}.demo_daily_cost:")
    for row in sample:
        say(
            f"  {row['usage_date']}  {row['provider']:<10} {row['model']:<18} "
            f"{row['requests']:>6} req  ${row['cost_usd']:>9}  run {row['x_run_id'][:8]}"
        )
    say(f"spend by provider, {START}..{END}:")
    for row in totals:
        say(f"  {row['provider']:<10} {row['requests']:>8} req  ${row['cost_usd']:>10}")
    say()
    say(f"warehouse file: {settings.warehouse_url.split('///', 1)[1]}")


def run_genai(services, run: Callable[[], bool]) -> bool:  # type: ignore[no-untyped-def]
    """OpenAI and Anthropic sample data over HTTP, then consolidated (scripts/demo_genai.py)."""
    say()
    server = demo_genai.SampleAPIServer()
    try:
        say(f"sample OpenAI and Anthropic admin APIs on {server.url} (sample_data/genai/)")
        demo_genai.store_credentials(services, ORG, server)
        ok = run()
    finally:
        server.close()
    say()
    demo_genai.print_spend(services, *GENAI, say)
    say()
    return ok


def demo_secret(path: Path) -> str:
    """A random secret kept in var/ (mode 0600), the same on every `make demo`."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def run_with_servers(services, api_key: str, keep: bool = False) -> int:  # type: ignore[no-untyped-def]
    import httpx

    from tests.support.servers import free_port, start_gunicorn, start_redis, start_worker

    settings = services.settings
    started = []
    try:
        redis = start_redis()
        started.append(redis)
        say(f"redis-server on {redis.url}")
        env = {
            "REDIS_URL": redis.url,
            "DATABASE_URL": settings.database_url,
            "WAREHOUSE_URL": settings.warehouse_url,
            "PIPELINE_OPS_VAR_DIR": str(settings.var_dir),
            # Both gunicorn workers must sign the console's session cookies alike.
            "PIPELINE_OPS_SESSION_KEY": demo_secret(settings.var_dir / "demo_session_key"),
        }
        logs = settings.var_dir / "logs"
        logs.mkdir(exist_ok=True)
        worker = start_worker(env, concurrency=2, name="demo", log_dir=logs)
        started.append(worker)
        say("celery worker (prefork, concurrency 2) is ready")
        port = int(os.environ.get("PORT", "8001"))
        if not port_is_free(port):
            port = free_port()
        web = start_gunicorn({**env, "PORT": str(port)}, workers=2, log_dir=logs, port=port)
        started.append(web)
        say(f"API on {web.url}")

        headers = {"X-API-Key": api_key}
        provider, domain, name = PIPELINE
        with httpx.Client(base_url=web.url, headers=headers, timeout=30) as http:
            resp = http.post(
                f"/pipelines/run/{ORG}/{provider}/{domain}/{name}",
                json={"start_date": START, "end_date": END},
            )
            say(f"POST /pipelines/run/{ORG}/{provider}/{domain}/{name} -> {resp.status_code}")
            if resp.status_code != 202:
                say(resp.text)
                return 1
            run_id = resp.json()["run_id"]
            deadline = time.monotonic() + 120
            seen = ""
            while time.monotonic() < deadline:
                status = http.get(f"/pipelines/status/{ORG}/{run_id}").json()
                line = ", ".join(f"{s['step_id']}={s['status']}" for s in status["steps"])
                if line != seen:
                    say(f"  {status['status']:<10} {line}")
                    seen = line
                if status["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.5)
            transitions = http.get(f"/pipelines/logs/{ORG}/{run_id}/transitions").json()
            say("transitions: " + " -> ".join(t["to_status"] for t in transitions["transitions"]))
            timings = http.get(f"/pipelines/logs/{ORG}/{run_id}/steps").json()["steps"]
        durations = {t["step_id"]: t["duration_ms"] for t in timings if t["status"] == "completed"}
        steps = [{**s, "duration_ms": durations.get(s["step_id"])} for s in status["steps"]]
        print_report(services, status, steps)
        genai_ok = run_genai(
            services, lambda: demo_genai.run_over_http(web.url, api_key, *GENAI, say)
        )
        say(f"logs: {logs}")
        say()
        key_file = settings.var_dir / "demo_api_key"
        say(f"web console: {web.url}/ui/{ORG}/runs")
        say(f"  sign in with the demo org's API key, saved in {key_file}")
        if keep:
            pids = " ".join(str(server.proc.pid) for server in reversed(started))
            say(f"KEEP=1: the worker, API and redis-server keep running; stop them: kill {pids}")
            started.clear()
        return 0 if status["status"] == "completed" and genai_ok else 1
    finally:
        for server in reversed(started):
            server.stop()
        if started:
            say("stopped the worker, the API and redis-server")


def run_local(svc) -> int:  # type: ignore[no-untyped-def]
    from datetime import date

    from pipeline.runs.service import RunRequest

    provider, domain, name = PIPELINE
    run = svc.runs.start(
        RunRequest(
            ORG,
            provider,
            domain,
            name,
            date.fromisoformat(START),
            date.fromisoformat(END),
            trigger="cli",
        )
    )
    record = svc.store.get_run(run.run_id)
    assert record is not None
    attempts = svc.store.step_attempts(record.run_id)
    steps = [
        {
            "step_id": a.step_id,
            "status": a.status,
            "attempts": a.attempt,
            "duration_ms": a.duration_ms,
            "rows_written": a.rows_written,
        }
        for a in attempts
    ]
    shown = record.as_dict()
    if record.ended_at and record.created_at:
        shown["duration_ms"] = int((record.ended_at - record.created_at).total_seconds() * 1000)
    print_report(svc, shown, steps)
    genai_ok = run_genai(svc, lambda: demo_genai.run_local(svc, *GENAI, say))
    return 0 if record.status == "completed" and genai_ok else 1


def main() -> int:
    from pipeline.bootstrap import cli_services
    from pipeline.settings import Settings

    # Without redis-server (or asked to) the demo runs in-process, like `pipeline-ops run
    # --local`: eager tasks, which must be set before the Celery app is first configured.
    asked_local = os.environ.get("PIPELINE_OPS_DEMO_LOCAL") == "1"
    local = asked_local or shutil.which("redis-server") is None
    if local:
        os.environ["PIPELINE_OPS_EAGER"] = "1"
    settings = Settings.from_env()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    # The GenAI part serves the sample Admin API answers from a loopback server; as an
    # operator would for a proxy, the demo allow-lists it for the egress policy.
    os.environ.setdefault("PIPELINE_OPS_EGRESS_ALLOW", "127.0.0.1:*")
    # Like `pipeline-ops db upgrade` before anything else: nothing migrates by itself.
    services = cli_services(settings, migrate=True)
    say(f"metadata DB: {settings.database_url}")
    say(f"warehouse:   {settings.warehouse_url}")
    api_key = demo_api_key(services)
    if asked_local:
        say("PIPELINE_OPS_DEMO_LOCAL=1: running in-process, without Redis, a worker or the API")
        return run_local(services)
    if local:
        say("redis-server is not installed, so the demo runs in-process (like `pipeline-ops run")
        say("--local`). For the full API + worker demo: sudo apt-get install -y redis-server")
        return run_local(services)
    # KEEP=1 (PIPELINE_OPS_DEMO_KEEP=1): leave the stack running to explore the console.
    return run_with_servers(services, api_key, keep=os.environ.get("PIPELINE_OPS_DEMO_KEEP") == "1")


if __name__ == "__main__":
    sys.exit(main())

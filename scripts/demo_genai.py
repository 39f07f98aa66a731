"""The GenAI part of `make demo`: OpenAI and Anthropic usage over the real HTTP path.

A tiny local server answers with the shipped sample pages (sample_data/genai/*.json, in the
providers' documented admin API formats, linked by next_page). The demo org gets one vault
credential per provider whose `base_url` points at that server, exactly as an operator
points a credential at a proxy. Then the OpenAI and Anthropic pipelines and the consolidate
pipeline run, and spend by provider and model is read back from cost_data_standard_1_3.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli.samples import (  # noqa: E402  (the server `pipeline-ops samples serve` runs)
    DEFAULT_PORT,
    PROVIDERS,
    SAMPLE_END,
    SAMPLE_START,
    SampleAPIServer,
)

PIPELINES = ["genai/payg/openai", "genai/payg/anthropic", "genai/unified/consolidate"]
CREDENTIAL = {"genai/payg/openai": "openai_sample", "genai/payg/anthropic": "anthropic_sample"}

Say = Callable[[str], None]


def store_credentials(services: Any, org: str, server: SampleAPIServer) -> None:
    """(Re)store the demo org's sample credentials, checked as `credentials add` checks
    them; the server's port changes every run."""
    from pipeline.definition.credential_check import checked_secret
    from pipeline_ops_core.errors import NotFoundError

    vault = services.credentials
    for provider in PROVIDERS:
        credential_id = f"{provider}_sample"
        with suppress(NotFoundError):
            vault.delete(org, credential_id)
        secret = checked_secret(provider, server.credential(provider))
        vault.add(org, provider, f"{provider} sample data", secret, credential_id=credential_id)


def run_over_http(base_url: str, api_key: str, org: str, start: str, end: str, say: Say) -> bool:
    """Run the three pipelines one after the other through the API; True if all completed."""
    import httpx

    ok = True
    with httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=30) as http:
        for path in PIPELINES:
            body: dict[str, Any] = {"start_date": start, "end_date": end}
            if path in CREDENTIAL:
                body["credential_id"] = CREDENTIAL[path]
            resp = http.post(f"/pipelines/run/{org}/{path}", json=body)
            if resp.status_code != 202:
                say(f"POST /pipelines/run/{org}/{path} -> {resp.status_code}: {resp.text}")
                return False
            run_id = resp.json()["run_id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                status = http.get(f"/pipelines/status/{org}/{run_id}").json()
                if status["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.3)
            say(describe(f"POST /pipelines/run/{org}/{path} -> 202", status))
            ok = ok and status["status"] == "completed"
    return ok


def run_local(services: Any, org: str, start: str, end: str, say: Say) -> bool:
    from datetime import date

    from pipeline.runs.service import RunRequest

    ok = True
    for path in PIPELINES:
        provider, domain, name = path.split("/")
        request = RunRequest(
            org, provider, domain, name, date.fromisoformat(start), date.fromisoformat(end),
            credential_id=CREDENTIAL.get(path), trigger="cli",
        )  # fmt: skip
        run = services.store.get_run(services.runs.start(request).run_id)
        assert run is not None
        steps = [
            {"step_id": a.step_id, "status": a.status, "rows_written": a.rows_written}
            for a in services.store.step_attempts(run.run_id)
            if a.status == "completed"
        ]
        say(describe(path, {**run.as_dict(), "steps": steps}))
        ok = ok and run.status == "completed"
    return ok


def describe(prefix: str, status: dict[str, Any]) -> str:
    steps = ", ".join(f"{s['step_id']} {s['rows_written']} rows" for s in status["steps"])
    error = f": {status['error_message']}" if status.get("error_message") else ""
    return f"{prefix}: {status['status']} ({steps}){error}"


def print_spend(services: Any, org: str, start: str, end: str, say: Say) -> None:
    rows = (
        services.warehouse()
        .query(
            "SELECT ServiceProviderName AS provider, x_model AS model,"
            " SUM(ConsumedQuantity) AS quantity, SUM(ListCost) AS list_cost,"
            " SUM(ContractedCost) AS contracted_cost, SUM(BilledCost) AS billed_cost"
            f" FROM `{services.settings.org_dataset(org)}.cost_data_standard_1_3`"
            " WHERE x_org_slug = @org AND x_source = 'genai_payg'"
            " GROUP BY provider, model ORDER BY billed_cost DESC",
            {"org": org},
        )
        .to_pylist()
    )
    say(f"spend by provider and model (cost_data_standard_1_3, FOCUS 1.3), {start}..{end}:")
    head = ("provider", "model", "units", "list", "contracted", "billed")
    line = "  {:<10} {:<28} {:>12} {:>8} {:>10} {:>8}"
    say(line.format(*head))
    for r in rows:
        money = [f"{r[c]:.2f}" for c in ("list_cost", "contracted_cost", "billed_cost")]
        say(line.format(r["provider"], r["model"], f"{int(r['quantity']):,}", *money))
    totals = [sum(r[c] for r in rows) for c in ("list_cost", "contracted_cost", "billed_cost")]
    say(line.format("total USD", "", "", *(f"{v:.2f}" for v in totals)))
    say("  (contracted: the org's negotiated rates, configs/pricing/demo_org.csv;")
    say("   billed: what the providers' cost endpoints reported)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="scripts/demo_genai.py",
        description=(
            "The GenAI part of `make demo`: serves the shipped OpenAI and Anthropic Admin API "
            f"samples (sample_data/genai/, usage for {SAMPLE_START}..{SAMPLE_END}) on loopback, "
            "stores one credential per provider whose base_url points there, runs the OpenAI, "
            "Anthropic and consolidate pipelines and prints spend by provider and model. "
            "`make demo` imports it; run on its own it does what `pipeline-ops samples serve` "
            "does: serve the samples and print the commands that use them, until Ctrl-C."
        ),
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="loopback port to serve")
    parser.add_argument("--org", default="acme", help="org the printed commands are for")
    args = parser.parse_args()
    from app.cli.genai import serve_samples

    serve_samples(args.port, args.org)

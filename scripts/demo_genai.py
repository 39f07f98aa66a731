"""The GenAI part of `make demo`: OpenAI and Anthropic usage over the real HTTP path.

A tiny local server answers with the shipped sample pages (sample_data/genai/*.json, in the
providers' documented admin API formats, linked by next_page). The demo org gets one vault
credential per provider whose `base_url` points at that server, exactly as an operator
points a credential at a proxy. Then the OpenAI and Anthropic pipelines and the consolidate
pipeline run, and spend by provider and model is read back from cost_data_standard_1_3.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data" / "genai"
# Prefix on the sample server -> (sample file, auth header the provider documents).
PROVIDERS = {
    "openai": ("openai_admin_api.json", "Authorization"),
    "anthropic": ("anthropic_admin_api.json", "x-api-key"),
}
PIPELINES = ["genai/payg/openai", "genai/payg/anthropic", "genai/unified/consolidate"]
CREDENTIAL = {"genai/payg/openai": "openai_sample", "genai/payg/anthropic": "anthropic_sample"}

Say = Callable[[str], None]


class SampleAPIServer:
    """Serves /<provider>/<api path>?page=<token> from the sample pages."""

    def __init__(self) -> None:
        self.pages = {
            key: json.loads((SAMPLES / name).read_text()) for key, (name, _) in PROVIDERS.items()
        }
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = outer.answer(self.path, self.headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, raw: str, headers: Any) -> tuple[int, Any]:
        parts = urlsplit(raw)
        provider, _, path = parts.path.lstrip("/").partition("/")
        if provider not in PROVIDERS:
            return 404, {"error": {"message": "unknown provider"}}
        if not headers.get(PROVIDERS[provider][1]):
            return 401, {"error": {"message": "missing admin key"}}
        pages = self.pages[provider].get("/" + path)
        if pages is None:
            return 404, {"error": {"message": f"no sample for /{path}"}}
        token = parse_qs(parts.query).get("page", [None])[0]
        if token is None:
            return 200, pages[0]
        follows = [i + 1 for i, page in enumerate(pages[:-1]) if page.get("next_page") == token]
        return (200, pages[follows[0]]) if follows else (400, {"error": {"message": "bad page"}})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def store_credentials(settings: Any, org: str, server_url: str) -> None:
    """(Re)store the demo org's sample credentials; the server's port changes every run."""
    from credentials.keys import key_provider
    from credentials.vault import VaultCredentialProvider
    from errors import NotFoundError
    from pipeline.db import make_engine

    vault = VaultCredentialProvider(
        make_engine(settings.database_url), key_provider(settings.master_key, settings.var_dir)
    )
    for provider in PROVIDERS:
        credential_id = f"{provider}_sample"
        with suppress(NotFoundError):
            vault.delete(org, credential_id)
        secret = {"admin_key": f"sk-demo-{provider}-sample", "base_url": f"{server_url}/{provider}"}
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

    from pipeline.runs import RunRequest

    ok = True
    for path in PIPELINES:
        provider, domain, name = path.split("/")
        request = RunRequest(
            org, provider, domain, name, date.fromisoformat(start), date.fromisoformat(end),
            credential_id=CREDENTIAL.get(path), trigger="cli",
        )  # fmt: skip
        run = services.store.get_run(services.runs.start(request)["run_id"])
        steps = [
            {"step_id": a["step_id"], "status": a["status"], "rows_written": a["rows_written"]}
            for a in services.store.step_attempts(run["run_id"])
            if a["status"] == "completed"
        ]
        say(describe(path, {**run, "steps": steps}))
        ok = ok and run["status"] == "completed"
    return ok


def describe(prefix: str, status: dict[str, Any]) -> str:
    steps = ", ".join(f"{s['step_id']} {s['rows_written']} rows" for s in status["steps"])
    error = f": {status['error_message']}" if status.get("error_message") else ""
    return f"{prefix}: {status['status']} ({steps}){error}"


def print_spend(settings: Any, org: str, start: str, end: str, say: Say) -> None:
    from warehouse import from_url

    rows = (
        from_url(settings.warehouse_url)
        .query(
            "SELECT ServiceProviderName AS provider, x_model AS model,"
            " SUM(ConsumedQuantity) AS quantity, SUM(ListCost) AS list_cost,"
            " SUM(ContractedCost) AS contracted_cost, SUM(BilledCost) AS billed_cost"
            f" FROM `{settings.org_dataset(org)}.cost_data_standard_1_3`"
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

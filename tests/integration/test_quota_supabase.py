"""SupabasePlanSource (supabase-py) against a local server speaking PostgREST."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.settings import Settings
from pipeline.storage.db import make_engine, upgrade
from pipeline_ops_core.errors import QuotaExceededError, TerminalError, TransientError
from quota.cache import PlanCache
from quota.factory import build_ledger_gate, plan_source
from quota.gate import LedgerGate
from quota.ledger import SqlLedger
from quota.plans import Plan, PlanDefaults
from quota.plans_supabase import SupabasePlanSource
from tests.support.servers import LoopbackHTTPServer

KEY = "service-role-key-for-tests"
TABLE_PATH = "/rest/v1/org_subscriptions"


class FakePostgREST(LoopbackHTTPServer):
    """`org_subscriptions` over PostgREST: GET with `eq.` filters, POST upserts.

    `fail_with` makes every request answer that (status, body) until cleared.
    """

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_with: tuple[int, bytes] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _check(self) -> bool:
                outer.requests.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                if outer.fail_with is not None:
                    self._send(*outer.fail_with)
                    return False
                if self.headers.get("apikey") != KEY or self.headers.get("Authorization") != (
                    f"Bearer {KEY}"
                ):
                    self._send(401, b'{"message": "Invalid API key", "code": "PGRST301"}')
                    return False
                if urlsplit(self.path).path != TABLE_PATH:
                    self._send(404, b'{"message": "relation does not exist", "code": "42P01"}')
                    return False
                return True

            def do_GET(self) -> None:
                if not self._check():
                    return
                query = parse_qs(urlsplit(self.path).query)
                rows = list(outer.rows.values())
                for column, values in query.items():
                    if column not in ("select", "limit") and values[0].startswith("eq."):
                        rows = [r for r in rows if str(r.get(column)) == values[0][3:]]
                rows = rows[: int(query.get("limit", ["1000"])[0])]
                body = json.dumps(rows).encode()
                self._send(200, body, {"Content-Range": f"0-{max(len(rows) - 1, 0)}/*"})

            def do_POST(self) -> None:
                if not self._check():
                    return
                incoming = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert "resolution=merge-duplicates" in self.headers.get("Prefer", "")
                for row in incoming if isinstance(incoming, list) else [incoming]:
                    outer.rows[row["org_slug"]] = {**outer.rows.get(row["org_slug"], {}), **row}
                self._send(201, json.dumps(list(outer.rows.values())).encode())

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)


@pytest.fixture
def postgrest() -> Iterator[FakePostgREST]:
    server = FakePostgREST()
    server.rows["acme"] = {
        "org_slug": "acme",
        "status": "ACTIVE",
        "daily_limit": 10,
        "monthly_limit": 100,
        "concurrent_limit": 2,
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    yield server
    server.close()


def test_found_a_plan_row(postgrest: FakePostgREST) -> None:
    source = SupabasePlanSource(postgrest.url, KEY)

    assert source.get("acme") == Plan("acme", "ACTIVE", 10, 100, 2, source="supabase")

    method, path, headers = postgrest.requests[-1]
    assert method == "GET"
    assert path == f"{TABLE_PATH}?select=%2A&org_slug=eq.acme&limit=1"
    assert headers["apikey"] == KEY and headers["authorization"] == f"Bearer {KEY}"


def test_no_plan_row_means_none_and_the_gate_uses_the_default_plan(
    postgrest: FakePostgREST, tmp_path: Path
) -> None:
    assert SupabasePlanSource(postgrest.url, KEY).get("globex") is None
    gate = gate_on(postgrest, tmp_path, PlanDefaults(concurrent_limit=1))
    gate.reserve("globex", "r1")
    with pytest.raises(QuotaExceededError) as caught:
        gate.reserve("globex", "r2")
    assert (caught.value.limit, caught.value.limit_value) == ("concurrent", 1)
    assert gate.usage("globex")["plan"]["source"] == "default"


def test_a_null_limit_in_the_row_falls_back_to_the_default(postgrest: FakePostgREST) -> None:
    postgrest.rows["acme"]["monthly_limit"] = None
    postgrest.rows["acme"]["status"] = "trial"
    plan = SupabasePlanSource(postgrest.url, KEY, PlanDefaults(monthly_limit=77)).get("acme")
    assert plan is not None and (plan.monthly_limit, plan.status) == (77, "TRIAL")


@pytest.mark.parametrize(
    "reply",
    [
        (503, b'{"message": "Database client error", "code": "PGRST000"}'),
        (500, b"<html>Internal Server Error</html>"),
        (502, b""),
    ],
)
def test_a_5xx_is_transient_and_the_cache_serves_the_last_plan(
    postgrest: FakePostgREST, reply: tuple[int, bytes]
) -> None:
    source = SupabasePlanSource(postgrest.url, KEY)
    cache = PlanCache(source, PlanDefaults(), ttl=0)  # every read goes to Supabase
    assert cache.get("acme").plan.daily_limit == 10
    postgrest.fail_with = reply

    with pytest.raises(TransientError, match=f"Supabase answered {reply[0]}"):
        source.get("acme")
    assert cache.get("acme").plan.daily_limit == 10  # the cached value, past its TTL
    with pytest.raises(TransientError):
        cache.get("globex")  # nothing cached to fall back on

    postgrest.fail_with = None
    postgrest.rows["acme"]["daily_limit"] = 11
    cache.invalidate("acme")
    assert cache.get("acme").plan.daily_limit == 11


def test_a_connection_error_is_transient(postgrest: FakePostgREST) -> None:
    source = SupabasePlanSource(postgrest.url, KEY, timeout=2)
    postgrest.close()
    with pytest.raises(TransientError, match="Supabase unreachable"):
        source.get("acme")


def test_a_rejected_key_is_terminal(postgrest: FakePostgREST) -> None:
    with pytest.raises(TerminalError, match="Supabase answered 401"):
        SupabasePlanSource(postgrest.url, "wrong-key").get("acme")


def gate_on(postgrest: FakePostgREST, tmp_path: Path, defaults: PlanDefaults) -> LedgerGate:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    source = SupabasePlanSource(postgrest.url, KEY, defaults)
    clock = lambda: datetime.now(UTC)  # noqa: E731
    cache = PlanCache(source, defaults, ttl=30)
    return LedgerGate(SqlLedger(make_engine(url)), cache, None, clock, timedelta(minutes=5))


def test_the_gate_writes_limits_through_supabase_and_rides_out_an_outage(
    postgrest: FakePostgREST, tmp_path: Path
) -> None:
    gate = gate_on(postgrest, tmp_path, PlanDefaults())
    plan = gate.set_limits("acme", concurrent=1)
    assert (plan.concurrent_limit, plan.daily_limit, plan.source) == (1, 10, "supabase")
    assert postgrest.rows["acme"]["concurrent_limit"] == 1
    method, path, _ = postgrest.requests[-1]
    assert (method, path) == ("POST", f"{TABLE_PATH}?on_conflict=org_slug")

    gate.reserve("acme", "r1")
    postgrest.fail_with = (503, b'{"message": "down"}')
    gate.plans.ttl = 0  # every reservation reads the plan again...
    with pytest.raises(QuotaExceededError):  # ...and, Supabase down, enforces the cached one
        gate.reserve("acme", "r2")
    gate.plans.invalidate()
    with pytest.raises(TransientError):  # nothing cached: the outage surfaces (API: 503)
        gate.reserve("acme", "r2")
    postgrest.fail_with = None
    gate.release("acme", "r1", succeeded=True)
    gate.reserve("acme", "r2")


def test_settings_with_both_variables_choose_supabase(
    postgrest: FakePostgREST, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "PIPELINE_OPS_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'meta.db'}",
            "SUPABASE_URL": postgrest.url,
            "SUPABASE_SERVICE_ROLE_KEY": KEY,
            "PIPELINE_OPS_EAGER": "1",
        }
    )
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    assert isinstance(plan_source(settings, engine, lambda: datetime.now(UTC)), SupabasePlanSource)
    gate = build_ledger_gate(settings, engine, lambda: datetime.now(UTC))
    assert gate.usage("acme")["plan"]["concurrent_limit"] == 2

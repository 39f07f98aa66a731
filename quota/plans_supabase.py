"""Plan limits from Supabase (`org_subscriptions` over PostgREST, with supabase-py).

In production the metadata DB is the Supabase database, so this is the same table
that `DatabasePlanSource` would read; reading it through PostgREST also works when
the metadata DB is elsewhere.

Chosen when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set. supabase-py raises
the same `APIError` for a 4xx and a 5xx, so an httpx response hook remembers the
status of the last response per thread: 5xx, 408, 429 and network errors become
`TransientError` (the plan cache then serves its last value), other 4xx are
`TerminalError` (a bad key or a missing table will not fix itself).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import httpx

from pipeline_ops_core.errors import TerminalError, TransientError
from quota.plans import Plan, PlanDefaults, plan_from_row

TABLE = "org_subscriptions"
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class SupabasePlanSource:
    name = "supabase"

    def __init__(
        self,
        url: str,
        service_role_key: str,
        defaults: PlanDefaults | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._key = service_role_key
        self.defaults = defaults or PlanDefaults()
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()
        self._last = threading.local()

    def _remember(self, response: httpx.Response) -> None:
        self._last.status = response.status_code

    def client(self) -> Any:
        """The supabase client, created on first use (it makes no request until then)."""
        with self._lock:
            if self._client is None:
                from supabase import create_client
                from supabase.lib.client_options import SyncClientOptions

                http = httpx.Client(
                    timeout=self.timeout, event_hooks={"response": [self._remember]}
                )
                # No retries inside the client: a reservation must not wait out its
                # exponential backoff; the plan cache is our fallback instead.
                options = SyncClientOptions(httpx_client=http, postgrest_client_retry=False)
                self._client = create_client(self.url, self._key, options=options)
            return self._client

    def _call(self, what: str, query: Any) -> Any:
        from postgrest.exceptions import APIError

        self._last.status = None
        try:
            return query.execute().data
        except httpx.HTTPError as exc:  # connect, read, timeout, protocol
            raise TransientError(f"Supabase unreachable ({what}): {type(exc).__name__}") from exc
        except APIError as exc:
            status = getattr(self._last, "status", None)
            detail = f"Supabase answered {status or 'an error'} ({what}): {exc.message or exc}"
            if status is None or status >= 500 or status in TRANSIENT_STATUSES:
                raise TransientError(detail) from exc
            raise TerminalError(detail) from exc

    def get(self, org_slug: str) -> Plan | None:
        query = self.client().table(TABLE).select("*").eq("org_slug", org_slug).limit(1)
        rows = self._call(f"read the plan of {org_slug}", query)
        if not rows:
            return None
        return plan_from_row(rows[0], self.defaults, self.name)

    def put(self, plan: Plan) -> None:
        row = {k: v for k, v in plan.as_dict().items() if k != "source"}
        row["updated_at"] = datetime.now(UTC).isoformat()
        query = self.client().table(TABLE).upsert(row, on_conflict="org_slug")
        self._call(f"write the plan of {plan.org_slug}", query)

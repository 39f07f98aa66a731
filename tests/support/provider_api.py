"""A loopback HTTP server speaking the OpenAI and Anthropic admin APIs from fixture pages.

Each route serves a list of pages in the documented envelope (`data`, `has_more`,
`next_page`); the `page` query parameter picks the page. Faults queued with `fail()` answer
the next requests first (429 with Retry-After, 500, 401). Every request is recorded.
Payload builders below produce the documented shapes (reference/provider_usage_apis.md).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.servers import LoopbackHTTPServer


class ProviderAPIServer(LoopbackHTTPServer):
    def __init__(self) -> None:
        self.routes: dict[str, list[dict[str, Any]]] = {}
        self.documents: dict[str, dict[str | None, dict[str, Any]]] = {}
        self.faults: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = outer._answer(self.path, dict(self.headers))
                payload = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)

    def serve(self, path: str, pages: list[list[dict[str, Any]]]) -> None:
        """`pages`: the buckets of each page, in order."""
        with self.lock:
            self.routes[path] = [{"object": "page", "data": buckets} for buckets in pages]

    def serve_documents(self, path: str, documents: dict[str | None, dict[str, Any]]) -> None:
        """Whole response bodies as given (a provider's own example), keyed by the page
        token that asks for them (None: the first request). The token is read from `page`."""
        with self.lock:
            self.documents[path] = dict(documents)

    def fail(
        self, status: int, headers: dict[str, str] | None = None, message: str | None = None
    ) -> None:
        error = {"error": {"message": message or f"HTTP {status}"}}
        with self.lock:
            self.faults.append((status, headers or {}, error))

    def _answer(self, raw: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append({"path": parts.path, "query": query, "headers": headers})
            if self.faults:
                return self.faults.pop(0)
            if parts.path in self.documents:
                token = query.get("page", [None])[0]
                document = self.documents[parts.path].get(token)
                if document is None:
                    return 400, {}, {"error": {"message": f"unknown page {token!r}"}}
                return 200, {}, document
            pages = self.routes.get(parts.path)
            if pages is None:
                return 404, {}, {"error": {"message": "not found"}}
            token = query.get("page", ["page_1"])[0]
            index = int(token.removeprefix("page_")) - 1
            more = index + 1 < len(pages)
            return (
                200,
                {},
                {
                    **pages[index],
                    "has_more": more,
                    "next_page": f"page_{index + 2}" if more else None,
                },
            )

    def paths(self) -> list[tuple[str, str | None]]:
        return [(r["path"], r["query"].get("page", [None])[0]) for r in self.requests]


def _ts(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=UTC).timestamp())


def _iso(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def openai_bucket(day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "bucket",
        "start_time": _ts(day),
        "end_time": _ts(day + timedelta(days=1)),
        "results": results,
    }


def openai_completion(model: str, project: str, key: str, batch: bool, n: int) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": 100_000 * n,
        "input_cached_tokens": 20_000 * n,
        "output_tokens": 30_000 * n,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": 10 * n,
        "project_id": project,
        "user_id": None,
        "api_key_id": key,
        "model": model,
        "batch": batch,
        "service_tier": "default",
    }


def openai_embedding(model: str, project: str, n: int) -> dict[str, Any]:
    return {
        "object": "organization.usage.embeddings.result",
        "input_tokens": 500_000 * n,
        "num_model_requests": 50 * n,
        "project_id": project,
        "user_id": None,
        "api_key_id": "key_emb",
        "model": model,
    }


def openai_cost(project: str, line_item: str, value: float) -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": value, "currency": "usd"},
        "line_item": line_item,
        "project_id": project,
    }


def serve_openai(server: ProviderAPIServer, days: list[date]) -> None:
    """Completions over 3 pages (one bucket a page), embeddings and costs on one page each."""
    mini, gpt41 = "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14"
    first = [
        openai_completion(mini, "proj_a", "key_1", False, 1),
        openai_completion(mini, "proj_a", "key_1", True, 2),
    ]
    completions = [
        [openai_bucket(days[0], first)],
        [openai_bucket(days[1], [openai_completion(gpt41, "proj_b", "key_2", False, 3)])],
        [openai_bucket(days[1], [openai_completion(mini, "proj_a", "key_1", False, 4)])],
    ]
    server.serve("/organization/usage/completions", completions)
    server.serve(
        "/organization/usage/embeddings",
        [
            [
                openai_bucket(d, [openai_embedding("text-embedding-3-small", "proj_a", 1)])
                for d in days
            ]
        ],
    )
    server.serve(
        "/organization/costs",
        [
            [
                openai_bucket(
                    days[0],
                    [
                        openai_cost("proj_a", "gpt-4o-mini-2024-07-18, input", 0.04),
                        openai_cost("proj_a", "gpt-4o-mini-2024-07-18, output", 0.05),
                    ],
                )
            ]
        ],
    )


def anthropic_bucket(day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "starting_at": _iso(day),
        "ending_at": _iso(day + timedelta(days=1)),
        "results": results,
    }


def anthropic_usage(model: str, workspace: str | None, tier: str, n: int) -> dict[str, Any]:
    return {
        "uncached_input_tokens": 10_000 * n,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 2_000 * n,
            "ephemeral_1h_input_tokens": 1_000 * n,
        },
        "cache_read_input_tokens": 50_000 * n,
        "output_tokens": 4_000 * n,
        "server_tool_use": {"web_search_requests": n},
        "api_key_id": f"apikey_{n}",
        "workspace_id": workspace,
        "model": model,
        "service_tier": tier,
        "context_window": "0-200k",
        "inference_geo": None,
    }


SONNET = "claude-sonnet-4-6"


def serve_anthropic(server: ProviderAPIServer, days: list[date]) -> None:
    server.serve(
        "/usage_report/messages",
        [
            [anthropic_bucket(days[0], [anthropic_usage(SONNET, "wrkspc_1", "standard", 1)])],
            [anthropic_bucket(days[0], [anthropic_usage("claude-haiku-4-5", None, "batch", 2)])],
            [anthropic_bucket(days[1], [anthropic_usage(SONNET, "wrkspc_1", "standard", 3)])],
        ],
    )
    server.serve(
        "/cost_report",
        [
            [
                anthropic_bucket(
                    days[0],
                    [
                        {
                            "amount": "123.45",
                            "currency": "USD",
                            "workspace_id": "wrkspc_1",
                            "description": "Claude Sonnet 4.6 Usage - Input Tokens",
                            "cost_type": "tokens",
                            "token_type": "uncached_input_tokens",
                            "model": "claude-sonnet-4-6",
                            "service_tier": "standard",
                            "context_window": "0-200k",
                            "inference_geo": None,
                        }
                    ],
                )
            ]
        ],
    )


def expected_openai_rows(server: ProviderAPIServer) -> list[tuple[Any, ...]]:
    """The raw-table rows the served usage pages must become, read straight off the payloads."""
    rows = []
    for path, endpoint in (
        ("/organization/usage/completions", "completions"),
        ("/organization/usage/embeddings", "embeddings"),
    ):
        for page in server.routes[path]:
            for bucket in page["data"]:
                day = datetime.fromtimestamp(bucket["start_time"], tz=UTC).date()
                for r in bucket["results"]:
                    rows.append(
                        (
                            day,
                            "openai",
                            r["model"],
                            r["project_id"],
                            r["api_key_id"],
                            r.get("service_tier"),
                            bool(r.get("batch")),
                            r["input_tokens"],
                            r.get("input_cached_tokens", 0),
                            r.get("output_tokens", 0),
                            r["num_model_requests"],
                            f"openai_admin_api:{endpoint}",
                        )
                    )
    return sorted(rows, key=repr)


RAW_COLUMNS = (
    "usage_date, provider, model, project_or_workspace_id, api_key_id, service_tier, batch, "
    "input_tokens, cached_input_tokens, output_tokens, requests, source"
)

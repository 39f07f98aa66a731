"""Local Google endpoints for the GCP billing tests, each a real HTTP server on 127.0.0.1.

- CatalogServer: the Cloud Billing Catalog API's SKU listing,
  `GET /v1/services/{id}/skus?currencyCode=&pageToken=`, in the documented response format,
  a few SKUs per page so paging is exercised. It checks the `X-goog-api-key` header (or a
  bearer token) and answers 401 otherwise, 404 for a service it doesn't know.
- TokenServer: an OAuth token endpoint for service-account keys (the JWT grant), so the
  real google-auth code signs and exchanges an assertion.
- DenyingProxy: forwards BigQuery REST calls to the emulator, except those naming a denied
  project, which get BigQuery's real 403 accessDenied error body. bqemulator has no IAM
  (every call is allowed), so this is how the access-denied path meets a real response.

`service_account_key` makes the JSON key those clients sign with (a fresh RSA key each time).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.servers import LoopbackHTTPServer


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return

    def reply(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def google_error(code: int, status: str, message: str, reason: str = "") -> dict[str, Any]:
    """The error body Google APIs answer with."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    return {"error": error}


class CatalogServer(LoopbackHTTPServer):
    """`skus` maps service id -> SKU objects (as the API returns them)."""

    def __init__(
        self,
        skus: Mapping[str, list[dict[str, Any]]],
        api_key: str,
        bearer_token: str | None = None,
        page_size: int = 2,
    ) -> None:
        self.skus, self.api_key, self.bearer_token = skus, api_key, bearer_token
        self.page_size = page_size
        self.requests: list[dict[str, Any]] = []
        # (status, headers, body) answered to the next requests instead, first in first out.
        self.faults: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        outer = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                outer.handle(self)

        super().__init__(Handler)

    def handle(self, req: _Quiet) -> None:
        parts = urlsplit(req.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append(
            {
                "path": parts.path,
                "query": query,
                "headers": {k.lower(): v for k, v in req.headers.items()},
            }
        )
        if self.faults:
            status, headers, body = self.faults.pop(0)
            return req.reply(status, body, headers)
        if not self._authorized(req):
            return req.reply(
                401,
                google_error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials.",
                    "unauthorized",
                ),
            )
        segments = parts.path.strip("/").split("/")
        if len(segments) != 4 or segments[:2] != ["v1", "services"] or segments[3] != "skus":
            return req.reply(404, google_error(404, "NOT_FOUND", f"no route {parts.path}"))
        service = segments[2]
        if service not in self.skus:
            return req.reply(404, google_error(404, "NOT_FOUND", f"Service {service} not found"))
        currency = query.get("currencyCode", "USD")
        start = (
            int(base64.urlsafe_b64decode(query["pageToken"]).decode())
            if query.get("pageToken")
            else 0
        )
        items = self.skus[service][start : start + self.page_size]
        page: dict[str, Any] = {"skus": [_in_currency(s, currency) for s in items]}
        following = start + self.page_size
        page["nextPageToken"] = (
            base64.urlsafe_b64encode(str(following).encode()).decode()
            if following < len(self.skus[service])
            else ""
        )
        req.reply(200, page)

    def _authorized(self, req: _Quiet) -> bool:
        if req.headers.get("X-goog-api-key") == self.api_key:
            return True
        auth = req.headers.get("Authorization", "")
        return bool(self.bearer_token) and auth == f"Bearer {self.bearer_token}"


def _in_currency(sku: dict[str, Any], currency: str) -> dict[str, Any]:
    out = json.loads(json.dumps(sku))
    for info in out.get("pricingInfo", []):
        for tier in info.get("pricingExpression", {}).get("tieredRates", []):
            tier.setdefault("unitPrice", {})["currencyCode"] = currency
    return out


class TokenServer(LoopbackHTTPServer):
    """Answers every JWT grant with `token` (or with `answer`, a 200 JSON of the caller's
    choice); keeps the assertions it was sent."""

    def __init__(self, token: str = "t0k-catalog", answer: dict[str, Any] | None = None) -> None:
        self.token = token
        self.assertions: list[str] = []
        outer = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.assertions += parse_qs(body).get("assertion", [])
                self.reply(200, answer or {"access_token": outer.token, "expires_in": 3600})

        super().__init__(Handler)
        self.token_uri = f"{self.url}/token"


def service_account_key(token_uri: str, **fields: str) -> dict[str, Any]:
    """A service-account JSON key google-auth can sign with; `fields` adds or overrides."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"type": "service_account", "private_key": pem, "token_uri": token_uri, **fields}


def pem_lines(info: Mapping[str, Any]) -> list[str]:
    """The body lines of the key's PEM: what a message quoting the key would contain."""
    return [line for line in info["private_key"].splitlines() if len(line) > 20]


_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length", "host"}


class DenyingProxy(LoopbackHTTPServer):
    """BigQuery REST in front of `upstream`; calls naming `denied_project` get a 403."""

    def __init__(self, upstream: str, denied_project: str) -> None:
        self.upstream = urlsplit(upstream)
        self.denied_project = denied_project
        self.denied: list[str] = []
        outer = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                outer.forward(self)

            def do_POST(self) -> None:
                outer.forward(self)

            def do_PUT(self) -> None:
                outer.forward(self)

            def do_PATCH(self) -> None:
                outer.forward(self)

            def do_DELETE(self) -> None:
                outer.forward(self)

        super().__init__(Handler)

    def forward(self, req: _Quiet) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        if self.denied_project in req.path or self.denied_project.encode() in body:
            self.denied.append(f"{req.command} {req.path}")
            return req.reply(403, self._access_denied(req.path, body))
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(req.command, req.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            req.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    req.send_header(name, value)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        finally:
            conn.close()

    def _access_denied(self, path: str, body: bytes) -> dict[str, Any]:
        # The texts BigQuery sends when the caller lacks bigquery.tables.get / getData.
        found = _TABLE_PATH.search(path)
        if found:
            table = f"{found.group(1)}:{found.group(2)}.{found.group(3)}"
            message = (
                f"Access Denied: Table {table}: Permission bigquery.tables.get denied on "
                f"table {table} (or it may not exist)."
            )
        else:
            words = body.decode(errors="replace").replace("`", " ").split()
            name = next((w.strip("\"',;") for w in words if self.denied_project in w), "")
            table = name.replace(".", ":", 1)
            message = (
                f"Access Denied: Table {table}: User does not have permission to query "
                f"table {table}, or perhaps it does not exist."
            )
        return google_error(403, "PERMISSION_DENIED", message, "accessDenied")


_TABLE_PATH = re.compile(r"/projects/([^/]+)/datasets/([^/]+)/tables/([^/?]+)")


@contextmanager
def running(server: LoopbackHTTPServer) -> Iterator[Any]:
    try:
        yield server
    finally:
        server.close()

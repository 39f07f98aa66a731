"""generic.http_extract with a credential: Bearer auth, and echoed secrets masked in errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline_ops_core.errors import TerminalError, TransientError
from processors.base import StepContext
from processors.generic.http_extract import ERROR_EXCERPT_CHARS, HttpExtractProcessor
from warehouse.base import WriteResult

TOKEN = "tok-unpatterned-" + "9" * 40


class Echo:
    def __init__(self) -> None:
        self.status = 200
        self.body = b"[]"
        self.seen: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append(self.headers.get("Authorization"))
                body = outer.body.replace(
                    b"{auth}", (self.headers.get("Authorization") or "").encode()
                )
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/usage"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    warning = error = info


def context(url: str, credential: dict[str, Any]) -> StepContext:
    return StepContext(
        org_slug="acme",
        run_id="r1",
        pipeline_id="p",
        step_id="s",
        attempt=1,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 1, 1),
        config={"url": url, "destination_table": "rows"},
        dataset="acme_dev",
        credential_id="c",
        warehouse=None,  # type: ignore[arg-type]
        log=Log(),
        _credential_loader=lambda: credential,
        _writer=lambda *a, **k: WriteResult("acme_dev.rows", 0, 0),
    )


def test_the_api_key_is_sent_as_a_bearer_token(echo: Echo) -> None:
    HttpExtractProcessor().run(context(echo.url, {"api_key": TOKEN}))
    assert echo.seen == [f"Bearer {TOKEN}"]


def test_the_default_credential_sends_no_authorization(echo: Echo) -> None:
    HttpExtractProcessor().run(context(echo.url, {}))
    assert echo.seen == [None]


@pytest.mark.parametrize(
    ("status", "error"), [(500, TransientError), (401, TerminalError), (404, TerminalError)]
)
def test_an_echoed_token_is_masked_before_the_excerpt_is_cut(
    echo: Echo, status: int, error: type[Exception]
) -> None:
    echo.status = status
    # The token straddles the excerpt's cut: a naive cut would leave a prefix of it.
    filler = "x" * (ERROR_EXCERPT_CHARS - 30)
    echo.body = json.dumps({"pad": filler, "you_sent": "{auth}", "again": "{auth}"}).encode()
    with pytest.raises(error) as info:
        HttpExtractProcessor().run(context(echo.url, {"api_key": TOKEN}))
    message = str(info.value)
    assert f"HTTP {status}" in message and "(response: " in message
    assert TOKEN[:12] not in message

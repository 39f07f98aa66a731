"""Loopback receivers for notification tests: an HTTP server that records POSTs (with
scripted status codes) and an SMTP server (aiosmtpd) that records mail."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller

from notify.webhook import sign
from tests.support.servers import LoopbackHTTPServer, free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the server answered


class WebhookReceiver(LoopbackHTTPServer):
    """Answers POSTs from `statuses` in order (then 200) and records each request."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[Received] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.received.append(Received(self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)
        self.url += "/hook"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} request(s), got {len(self.received)}")


class _Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 OK"


class SmtpReceiver:
    """An aiosmtpd server on a free loopback port, keeping every message it accepts."""

    def __init__(self) -> None:
        self.sink = _Sink()
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}?from=alerts@pipeline-ops.test"

    @property
    def messages(self) -> list[tuple[str, list[str], Message]]:
        return self.sink.messages

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[str, list[str], Message]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.sink.messages) >= count:
                return list(self.sink.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s), got {len(self.sink.messages)}")

    def close(self) -> None:
        self.controller.stop()


# How old a signed timestamp this receiver accepts.
DEFAULT_TOLERANCE_SECONDS = 300


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a webhook receiver does with our signature: a constant-time compare, and
    stale timestamps refused."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)

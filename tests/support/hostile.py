"""Loopback stand-ins for the hosts a hostile tenant aims at, and what they reveal.

`InternalHost` plays the cloud metadata service or the broker's Redis: it counts every TCP
connection it accepts and answers anything with a distinctive body, so a test can assert
that nothing connected and that the body never came back. `TrickleServer` is a provider that
sends its answer one byte at a time. Nothing here listens on or talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.support.servers import LoopbackHTTPServer

INTERNAL_BODY = "INTERNAL-HOST-ANSWER-7f3a9c-do-not-echo"


class InternalHost:
    """A TCP server that records each connection and answers HTTP with INTERNAL_BODY."""

    def __init__(self) -> None:
        self.connections = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with outer.lock:
                    outer.connections += 1
                self.request.settimeout(2)
                try:
                    self.request.recv(65536)
                    body = INTERNAL_BODY.encode()
                    self.request.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TrickleServer(LoopbackHTTPServer):
    """Answers 200 with a JSON body sent one byte every `interval` seconds, for `seconds`."""

    def __init__(self, interval: float = 1.0, seconds: float = 120.0) -> None:
        self.started: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.started.append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                end = time.monotonic() + seconds
                try:
                    while time.monotonic() < end:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(interval)
                except OSError:
                    return

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

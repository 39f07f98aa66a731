"""Helpers of the security suite: state snapshots, an echoing HTTP server, leak scans."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Engine, inspect, text

from tests.support.servers import LoopbackHTTPServer

# The metadata tables a hostile request must never touch.
WATCHED_TABLES = (
    "organizations",
    "org_credentials",
    "org_meta_pipeline_runs",
    "org_meta_step_logs",
    "org_meta_state_transitions",
    "org_meta_run_log_lines",
)


def metadata_rows(engine: Engine, tables: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """Every row of every (or the given) table, as sorted reprs: a cheap, exact snapshot."""
    names = tables or tuple(inspect(engine).get_table_names())
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in names:
            rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
            out[name] = sorted(repr(tuple(r)) for r in rows)
    return out


def warehouse_rows(path: Path) -> dict[str, list[str]]:
    """Every row of every warehouse table (read-only; retried while a writer holds the file)."""
    if not path.exists():
        return {}
    for _ in range(100):
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            time.sleep(0.05)
            continue
        try:
            tables = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
            ).fetchall()
            return {
                f"{s}.{t}": sorted(
                    repr(r) for r in con.execute(f'SELECT * FROM "{s}"."{t}"').fetchall()
                )
                for s, t in tables
            }
        finally:
            con.close()
    raise AssertionError(f"could not open {path} read-only")


def warehouse_fingerprint(path: Path) -> str:
    """A hash of the DuckDB file and its WAL: any write, of any row, changes it.

    Much cheaper than opening the database; nothing holds the file between
    operations (DESIGN §4), so an untouched warehouse hashes the same.
    """
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + ".wal")):
        digest.update(part.read_bytes() if part.exists() else b"-")
    return digest.hexdigest()


def redis_dump(url: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, serialized value) for every key of every type in the Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                value = b""
            yield key, repr(value).encode()
    finally:
        client.close()


class EchoServer(LoopbackHTTPServer):
    """Answers 500, then 401, each echoing the Authorization header it got in several shapes.

    That is what a careless provider (or proxy) does; the secret then sits in the error
    body that the processor quotes in its error message.
    """

    def __init__(self) -> None:
        self.received: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                with outer.lock:
                    outer.received.append(auth)
                    status = 500 if len(outer.received) == 1 else 401
                token = auth.split()[-1] if auth else ""
                body = (
                    json.dumps(
                        {"error": "nope", "you_sent": auth, "echo": f"<{token}>", "header": auth}
                    ).encode()
                    + f"\nraw {token} tail".encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.lock = threading.Lock()
        super().__init__(Handler)

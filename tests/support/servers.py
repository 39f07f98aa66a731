"""Start and stop the real servers the tests need, on free loopback ports.

redis-server, PostgreSQL (initdb + pg_ctl in a temp dir), a Celery worker and
gunicorn run as subprocesses; each helper waits until its server answers and
returns a handle whose `stop()` cleans up. Each is recorded in tests/support/leaks.py,
which fails the run if one is still running at its end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.leaks import track

ROOT = Path(__file__).resolve().parents[2]
# The operator allow-list the test stand-ins need (pipeline_ops_core/egress.py): loopback on any
# port.
LOOPBACK_ALLOW = "127.0.0.1:*"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout}s (last error: {last})")


class LoopbackHTTPServer:
    """An in-process HTTP server on a free loopback port, served from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval keeps shutdown() (each test's teardown) quick.
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes] | None
    url: str
    workdir: Path | None = None
    log_path: Path | None = None
    stop_hooks: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.proc is not None:  # every helper starts it in a session of its own
            track(self.name, self.proc.pid)

    @property
    def port(self) -> int:
        return port_of(self.url)

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-5000:]
        return ""

    def stop(self) -> None:
        for hook in self.stop_hooks:
            with contextlib.suppress(Exception):
                hook()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _popen(
    cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
    )


# -- redis ---------------------------------------------------------------------------------


def start_redis(port: int | None = None) -> Server:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="po-redis-"))
    log_path = workdir / "redis.log"
    proc = _popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        log_path,
    )
    server = Server("redis", proc, f"redis://127.0.0.1:{port}/0", workdir, log_path)

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    try:
        wait_for(ping, 15, "redis-server")
    except TimeoutError:
        server.stop()
        raise
    return server


# -- postgres ------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: apt-get install -y postgresql")
    return candidates[-1]


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI and these machines run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_postgres() -> Server:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="po-pg-"))
    datadir, sockdir = workdir / "data", workdir / "sock"
    sockdir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        shutil.chown(sockdir, "postgres", "postgres")
    subprocess.run(
        _as_postgres_user(
            [
                _pg_bin("initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    log_path = workdir / "postgres.log"
    _pg_ctl_start(datadir, sockdir, log_path, port)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    server = Server("postgres", None, url, workdir, log_path)
    server.stop_hooks.append(lambda: _pg_ctl_stop(datadir, "immediate", check=False))
    return server


def _pg_ctl_start(datadir: Path, sockdir: Path, log_path: Path, port: int) -> None:
    opts = (
        f"-p {port} -k {sockdir} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres_user(
            [
                _pg_bin("pg_ctl"),
                *("-D", str(datadir), "-l", str(log_path), "-o", opts),
                *("-w", "-t", "60", "start"),
            ]
        ),
        check=True,
        capture_output=True,
    )
    # pg_ctl detaches the postmaster (setsid): record it by the pid it wrote.
    track("postgres", int((datadir / "postmaster.pid").read_text().split()[0]))


def _pg_ctl_stop(datadir: Path, mode: str, check: bool) -> None:
    subprocess.run(
        _as_postgres_user([_pg_bin("pg_ctl"), "-D", str(datadir), "-m", mode, "-w", "stop"]),
        check=check,
        capture_output=True,
        timeout=60,
    )


def stop_postgres_only(server: Server) -> None:
    """Stop a server from start_postgres, keeping its data; clients' connections are cut.

    Fast mode, not immediate: the servers run with synchronous_commit=off, so an immediate
    stop can drop transactions committed in the last 200 ms, which is not what tests test.
    """
    assert server.workdir is not None
    _pg_ctl_stop(server.workdir / "data", "fast", check=True)


def start_postgres_again(server: Server) -> None:
    """Start a server stopped by stop_postgres_only on the same port and data directory."""
    assert server.workdir is not None and server.log_path is not None
    _pg_ctl_start(server.workdir / "data", server.workdir / "sock", server.log_path, server.port)


def create_pg_database(server: Server, name: str) -> str:
    import psycopg

    base = server.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def app_env(
    tmp: Path,
    database_url: str,
    redis_url: str,
    configs_dir: Path,
    warehouse_url: str | None = None,
) -> dict[str, str]:
    """The settings the app's processes share: in-process services, workers and gunicorn."""
    return {
        "DATABASE_URL": database_url,
        "WAREHOUSE_URL": warehouse_url or f"duckdb:///{tmp / 'warehouse.duckdb'}",
        "REDIS_URL": redis_url,
        "PIPELINE_OPS_VAR_DIR": str(tmp),
        "PIPELINE_OPS_CONFIGS_DIR": str(configs_dir),
        "PIPELINE_OPS_EGRESS_ALLOW": os.environ.get("PIPELINE_OPS_EGRESS_ALLOW", LOOPBACK_ALLOW),
    }


# -- celery worker and gunicorn ------------------------------------------------------------


def start_worker(
    env: dict[str, str],
    concurrency: int = 2,
    name: str = "worker",
    log_dir: Path | None = None,
    extra_args: list[str] | None = None,
    app: str = "tasks.celery_app",
) -> Server:
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="po-worker-"))
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **env}
    proc = _popen(
        [
            str(VENV_BIN / "celery"),
            "-A",
            app,
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            # Both queues, as the Procfile's worker (pipeline.queue.CONTROL_QUEUE).
            *([] if "-Q" in (extra_args or []) else ["-Q", "celery,pipeline_ops.control"]),
            *(extra_args or []),
        ],
        log_path,
        env=full_env,
        cwd=ROOT,
    )
    server = Server("celery-worker", proc, "", None, log_path)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{server.log()}")
        return "ready." in log_path.read_text(errors="replace")

    try:
        wait_for(ready, 60, "celery worker")
    except Exception:
        server.stop()
        raise
    return server


def start_gunicorn(
    env: dict[str, str],
    workers: int = 2,
    log_dir: Path | None = None,
    port: int | None = None,
    threads: int = 8,
    app: str = "app:create_app()",
) -> Server:
    port = port or free_port()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="po-web-"))
    log_path = log_dir / "gunicorn.log"
    proc = _popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            # As the Procfile: threaded workers, so a few slow clients can't hold them all.
            *("--worker-class", "gthread", "--threads", str(threads)),
            *("--timeout", "60", "--graceful-timeout", "30", "--keep-alive", "5"),
            app,
        ],
        log_path,
        env={**os.environ, **env},
        cwd=ROOT,
    )
    server = Server("gunicorn", proc, f"http://127.0.0.1:{port}", None, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log()}")
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    try:
        wait_for(up, 30, "gunicorn")
    except Exception:
        server.stop()
        raise
    return server

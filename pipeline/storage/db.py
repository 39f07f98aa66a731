"""Engine factory and schema migrations for the metadata database."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from pipeline.settings import ROOT


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common `postgres://` forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled per process: services (and so engines) are built after the fork in
        # each worker child, never inherited. check_same_thread is off because the
        # step heartbeat thread shares the pool.
        engine = create_engine(
            url,
            pool_size=5,
            max_overflow=10,
            connect_args={"timeout": 30, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            # WAL lets the API read while a worker writes; busy_timeout waits out
            # the other process's short write transactions instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # In WAL mode NORMAL is crash-safe for the application; it skips an fsync
            # per commit, which is most of the cost of a small metadata write.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


# How Alembic compares the models with the database (migrations/env.py, and the test that
# runs `alembic check`): column types and server defaults too, not only tables and columns.
COMPARE_OPTIONS = {"compare_type": True, "compare_server_default": True}


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the metadata database to `revision` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)

"""Engine factory and schema migrations for the metadata database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from pipeline.settings import ROOT


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common `postgres://` forms."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def postgres_connect_args(url: str) -> tuple[str, dict[str, object]]:
    """`?prepare_threshold=none` on a PostgreSQL URL becomes psycopg's connect argument
    (libpq would refuse it in the conninfo): a transaction pooler such as Supabase's
    (port 6543) hands each transaction to any server connection, where a statement psycopg
    prepared on another one does not exist."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    raw = parsed.query.get("prepare_threshold")
    if raw is None:
        return url, {}
    value = raw[-1] if isinstance(raw, tuple) else raw
    threshold: int | None = None if value.lower() in ("none", "null", "") else int(value)
    rest = parsed.difference_update_query(["prepare_threshold"])
    return rest.render_as_string(hide_password=False), {"prepare_threshold": threshold}


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
    url, connect_args = postgres_connect_args(url)
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
    )


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


UPGRADE_HINT = "run `pipeline-ops db upgrade`"


class SchemaNotCurrentError(RuntimeError):
    """The metadata DB is not at the revision this code needs (behind, or not created)."""


@dataclass(frozen=True)
class Revision:
    """Where the metadata DB is against what this code needs."""

    current: tuple[str, ...]  # empty: no schema at all
    needed: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.needed)

    def describe(self) -> str:
        have = ", ".join(self.current) or "none (no schema yet)"
        return f"the metadata DB is at revision {have}, this code needs {', '.join(self.needed)}"


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def head_revisions() -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()))


def revision_of(url: str) -> Revision:
    """The DB's revision without changing anything: a SQLite file that does not exist is
    reported as empty, not created. Raises what the driver raises when the DB is down."""
    from alembic.runtime.migration import MigrationContext

    url = normalize_url(url)
    needed = head_revisions()
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        return Revision((), needed)
    url, connect_args = postgres_connect_args(url) if path is None else (url, {})
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return Revision(tuple(sorted(current)), needed)


def require_current(url: str) -> None:
    """Refuse (SchemaNotCurrentError) unless the DB is at the code's revision: processes
    never migrate by themselves, `pipeline-ops db upgrade` does, once, on purpose."""
    revision = revision_of(url)
    if not revision.up_to_date:
        raise SchemaNotCurrentError(f"{revision.describe()}: {UPGRADE_HINT}")

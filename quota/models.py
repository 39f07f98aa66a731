"""Quota tables (SQLAlchemy Core), on the shared MetaData (pipeline_ops_core/metadata.py).

migrations/versions/0002_quota.py creates them in the metadata database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
)
from sqlalchemy.dialects import postgresql, sqlite

from pipeline_ops_core.metadata import metadata

# The plan limits of each org: the embedded plan source, and in production the very
# table that Supabase serves (the metadata DB is the Supabase database there).
org_subscriptions = Table(
    "org_subscriptions",
    metadata,
    Column("org_slug", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("daily_limit", Integer, nullable=False),
    Column("monthly_limit", Integer, nullable=False),
    Column("concurrent_limit", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per org. `day` and `month` name the period the counters belong to, so the
# reservation UPDATE can roll them over itself (UTC midnight, UTC month start).
org_quota_ledger = Table(
    "org_quota_ledger",
    metadata,
    Column("org_slug", String(64), primary_key=True),
    Column("day", Date, nullable=False),
    Column("daily_runs", Integer, nullable=False, server_default="0"),
    Column("month", Date, nullable=False),  # the first day of the month
    Column("monthly_runs", Integer, nullable=False, server_default="0"),
    Column("concurrent_running", Integer, nullable=False, server_default="0"),
    Column("succeeded_runs", Integer, nullable=False, server_default="0"),
    Column("failed_runs", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Bumped by every plan change made through the gate. Each process tags its cached
    # plan with the epoch it read, and the reservation UPDATE only matches that epoch:
    # a plan cached before a change (in any process) can't admit a run.
    Column("plan_epoch", Integer, nullable=False, server_default="0"),
)

# One row per reserved run. Flipping `released_at` from NULL is what makes a release
# count exactly once; `expires_at` lets a lease nobody renews free its slot.
org_quota_leases = Table(
    "org_quota_leases",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("org_slug", String(64), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    # succeeded | failed | expired (an expired lease may later learn its outcome)
    Column("outcome", String(16), nullable=True),
    Index("ix_quota_leases_org_active", "org_slug", "released_at", "expires_at"),
)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on both SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"quota tables need SQLite or PostgreSQL, not {conn.dialect.name}")

"""Schedule tables (SQLAlchemy Core), on the shared metadata. Migration 0005_schedules."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from pipeline_ops_core.metadata import metadata

# Catch-up policies for ticks missed while beat was down:
#   latest - run only the latest missed tick (the default),
#   all    - run every missed tick, at most `catch_up_limit` of the most recent,
#   none   - run no missed tick; only a tick that is due right now fires.
CATCH_UP_POLICIES = ("latest", "all", "none")

schedules = Table(
    "org_pipeline_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_slug", String(64), ForeignKey("organizations.org_slug"), nullable=False),
    # provider/domain/pipeline: the address of the YAML file, as in the API path.
    Column("pipeline_path", String(200), nullable=False),
    Column("credential_id", String(128), nullable=False, server_default="default"),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    # NULL: the pipeline YAML's `schedule`.
    Column("cron", String(100), nullable=True),
    # NULL: UTC. An IANA name such as Europe/Berlin evaluates the cron in local time.
    Column("timezone", String(64), nullable=True),
    Column("catch_up", String(16), nullable=False, server_default="latest"),
    Column("catch_up_limit", Integer, nullable=False, server_default="24"),
    # The latest tick already handled (dispatched, skipped or passed over): ticks
    # after it and not after now are due.
    Column("last_tick", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("org_slug", "pipeline_path", name="uq_schedule_org_pipeline"),
)

dispatches = Table(
    "org_pipeline_schedule_dispatches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_slug", String(64), nullable=False),
    Column("pipeline_path", String(200), nullable=False),
    Column("scheduled_time", DateTime(timezone=True), nullable=False),
    # claimed (inserted, run not started yet) -> started | skipped | failed
    Column("status", String(16), nullable=False),
    Column("run_id", String(36), nullable=True),
    Column("reason", Text, nullable=True),
    Column("dispatcher", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The guarantee against duplicate scheduled runs: whoever inserts this row first
    # starts the run; any other beat (or a retried task) loses on this constraint.
    UniqueConstraint("org_slug", "pipeline_path", "scheduled_time", name="uq_dispatch_tick"),
    Index("ix_dispatch_org_created", "org_slug", "created_at"),
)

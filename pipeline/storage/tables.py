"""The tables of the metadata database (SQLAlchemy Core), all on one MetaData.

The engine's tables are defined here; the other packages' tables are imported so that
`metadata` below, the one migrations/env.py hands Alembic, carries every table. Alembic
migrations in migrations/ create them; tests/integration/test_migrations.py checks
that the two agree (`alembic check`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

from credentials.models import org_credentials, org_sealed_secrets
from notify.store import notification_settings
from pipeline.storage import state
from pipeline_ops_core.metadata import metadata
from quota.models import org_quota_leases, org_quota_ledger, org_subscriptions

# Every table of the metadata database: the engine's own (below: organizations, the run
# records, schedules, subscriptions) and, imported above, those of quota, the vault and
# notifications.
__all__ = [
    "counters",
    "dispatches",
    "log_lines",
    "metadata",
    "notification_settings",
    "org_credentials",
    "org_quota_leases",
    "org_quota_ledger",
    "org_saas_subscriptions",
    "org_sealed_secrets",
    "org_subscriptions",
    "organizations",
    "pipeline_runs",
    "schedules",
    "state_transitions",
    "step_logs",
]

# The predicate of the partial unique index on idempotency keys: the active statuses, in
# the order migration 0001 wrote them.
_ACTIVE_SQL = "status IN ({})".format(", ".join(f"'{s}'" for s in state.ALL if s in state.ACTIVE))

organizations = Table(
    "organizations",
    metadata,
    Column("org_slug", String(64), primary_key=True, default=""),
    Column("name", String(200), nullable=False),
    Column("api_key_prefix", String(16), nullable=False, unique=True),
    Column("api_key_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Key rotation (migration 0003_credentials): the previous key keeps working
    # until previous_key_expires_at, the overlap window.
    Column("previous_key_prefix", String(16), nullable=True),
    Column("previous_key_hash", String(64), nullable=True),
    Column("previous_key_expires_at", DateTime(timezone=True), nullable=True),
    Column("key_rotated_at", DateTime(timezone=True), nullable=True),
    Column("key_revoked_at", DateTime(timezone=True), nullable=True),
    Index("ux_org_previous_key_prefix", "previous_key_prefix", unique=True),
)

pipeline_runs = Table(
    "org_meta_pipeline_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("org_slug", String(64), ForeignKey("organizations.org_slug"), nullable=False),
    Column("pipeline_id", String(128), nullable=False),
    Column("pipeline_path", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(400), nullable=False),
    Column("trigger", String(16), nullable=False, server_default="api"),
    Column("credential_id", String(128), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("params", JSON, nullable=False),
    # The resolved pipeline (steps, configs) the workers execute: a snapshot, so a
    # config file edited mid-run can't change a run already admitted.
    Column("plan", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    # The reaper fails an active run once this passes.
    Column("deadline_at", DateTime(timezone=True), nullable=True),
    Column("error_message", Text, nullable=True),
    Index("ix_runs_org_created", "org_slug", "created_at", "run_id"),
    Index("ix_runs_status_deadline", "status", "deadline_at"),
    # The console's coverage grid: an org's runs overlapping a date window (0015).
    Index("ix_runs_org_end_date", "org_slug", "end_date", "start_date"),
    # At most one active run per idempotency key; enforced by the database so two
    # concurrent requests can't both get through.
    Index(
        "ux_runs_active_idempotency",
        "idempotency_key",
        unique=True,
        sqlite_where=text(_ACTIVE_SQL),
        postgresql_where=text(_ACTIVE_SQL),
    ),
)

step_logs = Table(
    "org_meta_step_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("org_meta_pipeline_runs.run_id"), nullable=False),
    Column("step_id", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("task_id", String(200), nullable=True),
    Column("worker", String(200), nullable=True),
    # The executing process renews this while it works; a copy of the same task
    # delivered twice sees a live claim and stands down.
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("rows_written", Integer, nullable=False, server_default="0"),
    Column("metrics", JSON, nullable=True),
    Column("error", Text, nullable=True),
    # How many processes died while running this attempt (each redelivery that took the
    # claim over from one); at PIPELINE_OPS_MAX_LOST_WORKERS the attempt fails.
    Column("lost_workers", Integer, nullable=False, server_default="0"),
    UniqueConstraint("run_id", "step_id", "attempt", name="uq_step_attempt"),
    Index("ix_step_logs_run", "run_id", "step_id"),
)

state_transitions = Table(
    "org_meta_state_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("org_meta_pipeline_runs.run_id"), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=True),
    Index("ix_transitions_run", "run_id", "id"),
)

log_lines = Table(
    "org_meta_run_log_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("org_meta_pipeline_runs.run_id"), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("level", String(10), nullable=False),
    Column("step_id", String(128), nullable=True),
    Column("attempt", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Index("ix_log_lines_run", "run_id", "id"),
)

# -- schedules (pipeline/schedules) -------------------------------------------------------

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

# -- running totals for /metrics (pipeline/storage/counters.py) ---------------------------

# Counts kept up to date by the statement that ends a run, a step attempt or a schedule
# tick, so a scrape reads a few hundred rows instead of aggregating every run, and so the
# totals survive `db prune`. `le` is a histogram bucket's upper bound ('' elsewhere).
counters = Table(
    "org_meta_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("org_slug", String(64), primary_key=True, default=""),
    Column("pipeline_id", String(200), primary_key=True, default=""),
    Column("status", String(16), primary_key=True, default=""),
    Column("le", String(16), primary_key=True, default=""),
    Column("value", BigInteger, nullable=False, server_default="0"),
    Column("total", Float, nullable=False, server_default="0"),
    Column("last_at", DateTime(timezone=True), nullable=True),
)

# -- SaaS subscriptions (pipeline/subscriptions.py) --------------------------------------

org_saas_subscriptions = Table(
    "org_saas_subscriptions",
    metadata,
    Column("subscription_id", String(32), primary_key=True),
    Column(
        "org_slug",
        String(64),
        ForeignKey("organizations.org_slug", name="fk_org_saas_subscriptions_org"),
        nullable=False,
    ),
    Column("provider", String(64), nullable=False),
    Column("plan", String(200), nullable=False),
    Column("seats", Integer, nullable=False),
    # Per seat per billing cycle, in `currency`.
    Column("unit_price", Numeric(18, 6), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("billing_cycle", String(16), nullable=False),
    Column("start_date", Date, nullable=False),
    # Last day covered (inclusive); null while the subscription runs on.
    Column("end_date", Date, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_org_saas_subscriptions_org", "org_slug", "start_date"),
)

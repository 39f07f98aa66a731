"""metrics: running totals (org_meta_counters), filled from the rows already there

Revision ID: 0016b_metric_counters
Revises: 0015_console_indexes
Create Date: 2026-12-03 19:00:00

Written by hand (pipeline/storage/counters.py). /metrics reads these rows instead of
aggregating every run and step at each scrape; from now on the statements that end a
run, an attempt or a schedule tick bump them. The history already stored is counted
once here, so the counters go on from where the old gauges were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016b_metric_counters"
down_revision = "0015_console_indexes"
branch_labels = None
depends_on = None

STEP_BUCKETS_SECONDS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


def upgrade() -> None:
    op.create_table(
        "org_meta_counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("org_slug", sa.String(64), nullable=False),
        sa.Column("pipeline_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("le", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total", sa.Float(), server_default="0", nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", "org_slug", "pipeline_id", "status", "le"),
    )
    op.execute(
        "INSERT INTO org_meta_counters (name, org_slug, pipeline_id, status, le, value, total,"
        " last_at) SELECT 'runs', org_slug, pipeline_id, status, '', COUNT(*), 0, MAX(ended_at)"
        " FROM org_meta_pipeline_runs WHERE status IN ('completed', 'failed', 'cancelled')"
        " GROUP BY org_slug, pipeline_id, status"
    )
    op.execute(
        "INSERT INTO org_meta_counters (name, org_slug, pipeline_id, status, le, value, total)"
        " SELECT 'dispatches', org_slug, pipeline_path, status, '', COUNT(*), 0"
        " FROM org_pipeline_schedule_dispatches WHERE status <> 'claimed'"
        " GROUP BY org_slug, pipeline_path, status"
    )
    # Each finished attempt in the smallest bucket that holds it (cumulated at scrape).
    whens = " ".join(
        f"WHEN duration_ms <= {int(b * 1000)} THEN '{float(b)}'" for b in STEP_BUCKETS_SECONDS
    )
    bucket = f"CASE {whens} ELSE '+Inf' END"
    op.execute(
        "INSERT INTO org_meta_counters (name, org_slug, pipeline_id, status, le, value, total)"
        f" SELECT 'step_duration', '', '', status, {bucket}, COUNT(*),"
        " SUM(duration_ms) / 1000.0 FROM org_meta_step_logs WHERE duration_ms IS NOT NULL"
        f" GROUP BY status, {bucket}"
    )


def downgrade() -> None:
    op.drop_table("org_meta_counters")

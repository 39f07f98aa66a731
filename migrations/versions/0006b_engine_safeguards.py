"""engine safeguards: lost-worker count, the cancelling status

Revision ID: 0006b_engine_safeguards
Revises: 0005_schedules
Create Date: 2026-12-03 16:00:00

Written by hand.
- org_meta_step_logs.lost_workers: how many processes died running an attempt; the step
  fails at PIPELINE_OPS_MAX_LOST_WORKERS instead of being redelivered forever.
- ux_runs_active_idempotency also covers `cancelling`: a run being cancelled keeps its
  idempotency key until its executing step has stopped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006b_engine_safeguards"
down_revision = "0005_schedules"
branch_labels = None
depends_on = None

_OLD_ACTIVE = "status IN ('pending', 'validating', 'queued', 'running')"
_NEW_ACTIVE = "status IN ('pending', 'validating', 'queued', 'running', 'cancelling')"


def _active_index(where: str) -> None:
    with op.batch_alter_table("org_meta_pipeline_runs", schema=None) as batch_op:
        batch_op.drop_index("ux_runs_active_idempotency")
        batch_op.create_index(
            "ux_runs_active_idempotency",
            ["idempotency_key"],
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def upgrade() -> None:
    with op.batch_alter_table("org_meta_step_logs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lost_workers", sa.Integer(), server_default="0", nullable=False)
        )
    _active_index(_NEW_ACTIVE)


def downgrade() -> None:
    # A run left cancelling would hold no key under the old index; end it first.
    op.execute(
        "UPDATE org_meta_pipeline_runs SET status = 'cancelled' WHERE status = 'cancelling'"
    )
    _active_index(_OLD_ACTIVE)
    with op.batch_alter_table("org_meta_step_logs", schema=None) as batch_op:
        batch_op.drop_column("lost_workers")

"""quota: the plan epoch in the ledger row

Revision ID: 0008_quota_plan_epoch
Revises: 0002_quota
Create Date: 2026-12-03 16:00:00

Written by hand (quota/models.py). Every plan change bumps `plan_epoch`, and a
reservation only goes through with the epoch its plan was read at, so a plan cached
by any process before a change can't admit a run, whether or not Redis is up.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_quota_plan_epoch"
down_revision = "0002_quota"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "org_quota_ledger",
        sa.Column("plan_epoch", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("org_quota_ledger") as batch:
        batch.drop_column("plan_epoch")

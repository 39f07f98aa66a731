"""one head: the quota, credential, subscription and schedule branches join

Revision ID: 0009_one_head
Revises: 0008_quota_plan_epoch, 0003_credentials, 0004_subscriptions, 0006b_engine_safeguards
Create Date: 2026-12-03 18:00:00

Written by hand. No schema change: the four branches that grew from 0001 meet here, so
the next migration has a single revision to follow and `alembic revision --autogenerate`
(which compares the models with every table, pipeline/storage/tables.py) has one head.
A database already at all four heads moves here without a statement.
"""

from __future__ import annotations

revision = "0009_one_head"
down_revision = ("0008_quota_plan_epoch", "0003_credentials", "0004_subscriptions", "0006b_engine_safeguards")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""quota: plan limits, the per-org ledger and per-run leases

Revision ID: 0002_quota
Revises: 0001
Create Date: 2026-11-26 09:00:00

Written by hand: the tables live in quota/models.py under their own MetaData.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0002_quota"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_subscriptions",
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("monthly_limit", sa.Integer(), nullable=False),
        sa.Column("concurrent_limit", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_slug"),
    )
    op.create_table(
        "org_quota_ledger",
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("daily_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("monthly_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("concurrent_running", sa.Integer(), server_default="0", nullable=False),
        sa.Column("succeeded_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_slug"),
    )
    op.create_table(
        "org_quota_leases",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(
        "ix_quota_leases_org_active",
        "org_quota_leases",
        ["org_slug", "released_at", "expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_quota_leases_org_active", table_name="org_quota_leases")
    op.drop_table("org_quota_leases")
    op.drop_table("org_quota_ledger")
    op.drop_table("org_subscriptions")

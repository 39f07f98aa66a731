"""per-org SaaS subscriptions

Revision ID: 0004_subscriptions
Revises: 0001
Create Date: 2026-11-25 23:30:00

Written by hand. org_saas_subscriptions is defined in pipeline/storage/tables.py (its own
MetaData). Branches off 0001 in parallel with 0002_quota and 0003_credentials;
`upgrade heads` applies them all.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_subscriptions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_saas_subscriptions",
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("billing_cycle", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_slug"], ["organizations.org_slug"], name="fk_org_saas_subscriptions_org"
        ),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_org_saas_subscriptions"),
    )
    op.create_index(
        "ix_org_saas_subscriptions_org", "org_saas_subscriptions", ["org_slug", "start_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_org_saas_subscriptions_org", table_name="org_saas_subscriptions")
    op.drop_table("org_saas_subscriptions")

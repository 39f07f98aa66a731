"""schedules, schedule dispatch records, notification settings

Revision ID: 0005_schedules
Revises: 0001
Create Date: 2026-11-25 23:30:00

Written by hand. org_pipeline_schedules and org_pipeline_schedule_dispatches are
defined in pipeline/storage/tables.py; org_notification_settings in notify/store.py
(its own MetaData). Branches off 0001 in parallel with 0002-0004; `upgrade heads`
applies them all.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_schedules"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_pipeline_schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("pipeline_path", sa.String(length=200), nullable=False),
        sa.Column("credential_id", sa.String(length=128), server_default="default", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("catch_up", sa.String(length=16), server_default="latest", nullable=False),
        sa.Column("catch_up_limit", sa.Integer(), server_default="24", nullable=False),
        sa.Column("last_tick", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_slug"], ["organizations.org_slug"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_slug", "pipeline_path", name="uq_schedule_org_pipeline"),
    )
    op.create_table(
        "org_pipeline_schedule_dispatches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("pipeline_path", sa.String(length=200), nullable=False),
        sa.Column("scheduled_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("dispatcher", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "org_slug", "pipeline_path", "scheduled_time", name="uq_dispatch_tick"
        ),
    )
    with op.batch_alter_table("org_pipeline_schedule_dispatches", schema=None) as batch_op:
        batch_op.create_index("ix_dispatch_org_created", ["org_slug", "created_at"], unique=False)

    op.create_table(
        "org_notification_settings",
        sa.Column("org_slug", sa.String(length=64), nullable=False),
        sa.Column("on_failure", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("on_success", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.String(length=128), nullable=True),
        sa.Column("slack_webhook_url", sa.Text(), nullable=True),
        sa.Column("email_to", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_slug"], ["organizations.org_slug"]),
        sa.PrimaryKeyConstraint("org_slug"),
    )


def downgrade() -> None:
    op.drop_table("org_notification_settings")
    with op.batch_alter_table("org_pipeline_schedule_dispatches", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatch_org_created")
    op.drop_table("org_pipeline_schedule_dispatches")
    op.drop_table("org_pipeline_schedules")

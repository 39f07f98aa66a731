"""console indexes: runs by org and end date (the coverage grid)

Revision ID: 0015_console_indexes
Revises: 0009_one_head
Create Date: 2026-12-03 19:00:00

Written by hand. The web console's coverage page reads the runs of one org whose dates
overlap a window (`end_date >= first AND start_date <= last`); without this index that
is a scan of every run the org ever had.
"""

from __future__ import annotations

from alembic import op

revision = "0015_console_indexes"
down_revision = "0009_one_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_org_end_date",
        "org_meta_pipeline_runs",
        ["org_slug", "end_date", "start_date"],
    )


def downgrade() -> None:
    op.drop_index("ix_runs_org_end_date", table_name="org_meta_pipeline_runs")

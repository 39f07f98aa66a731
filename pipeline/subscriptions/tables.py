"""The SaaS subscription table (SQLAlchemy Core), on the shared MetaData. Migration
0004_subscriptions creates it."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Table

from pipeline_ops_core.metadata import metadata

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

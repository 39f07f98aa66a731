"""Per-org SaaS subscriptions in the metadata DB: the service behind the CLI and the admin
API, and the reader the subscription processor gets through its StepContext.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    delete,
    insert,
    or_,
    select,
)

from pipeline.storage.statements import row_dict, utcnow
from pipeline.storage.tables import org_saas_subscriptions
from pipeline_ops_core.errors import NotFoundError, TerminalError
from pipeline_ops_core.identifiers import CURRENCY_RE, PROVIDER_RE
from processors.subscription.base import BILLING_CYCLES, Subscription

FIELDS = ("provider", "plan", "seats", "unit_price", "currency", "billing_cycle")


def _record(row: Any) -> dict[str, Any]:
    out = row_dict(row._mapping)
    out["unit_price"] = Decimal(str(out["unit_price"]))
    return out


def check_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validated, normalized subscription fields; TerminalError names every problem."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    provider = str(values.get("provider") or "").lower()
    if not PROVIDER_RE.match(provider):
        problems.append("provider must be 1-64 of a-z, 0-9 and _")
    out["provider"] = provider
    plan = str(values.get("plan") or "").strip()
    if not plan or len(plan) > 200:
        problems.append("plan must be 1-200 characters")
    out["plan"] = plan
    seats = values.get("seats")
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= 10**6:
        problems.append("seats must be a whole number from 1 to 1000000")
    out["seats"] = seats
    try:
        price = Decimal(str(values.get("unit_price")))
        if not price.is_finite() or price < 0 or price >= 10**12:
            raise InvalidOperation
        out["unit_price"] = price.quantize(Decimal("0.000001"))
    except InvalidOperation:
        problems.append("unit_price must be a non-negative number")
    currency = str(values.get("currency") or "USD").upper()
    if not CURRENCY_RE.match(currency):
        problems.append("currency must be an ISO 4217 code such as USD")
    out["currency"] = currency
    cycle = values.get("billing_cycle") or "monthly"
    if cycle not in BILLING_CYCLES:
        problems.append(f"billing_cycle must be one of {', '.join(BILLING_CYCLES)}")
    out["billing_cycle"] = cycle
    start, end = values.get("start_date"), values.get("end_date")
    if not isinstance(start, date):
        problems.append("start_date must be a date")
    if end is not None and (not isinstance(end, date) or (isinstance(start, date) and end < start)):
        problems.append("end_date must be a date on or after start_date")
    out["start_date"], out["end_date"] = start, end
    if problems:
        raise TerminalError("invalid subscription: " + "; ".join(problems))
    return out


class SubscriptionService:
    """Add, list and remove an org's subscriptions (CLI and admin API)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def add(self, org_slug: str, values: dict[str, Any]) -> dict[str, Any]:
        row = check_fields(values)
        row.update(
            subscription_id=f"sub_{secrets.token_hex(8)}",
            org_slug=org_slug,
            created_at=self.clock(),
        )
        with self.engine.begin() as conn:
            conn.execute(insert(org_saas_subscriptions).values(**row))
        return self.get(org_slug, row["subscription_id"])

    def get(self, org_slug: str, subscription_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(org_saas_subscriptions).where(
                    org_saas_subscriptions.c.org_slug == org_slug,
                    org_saas_subscriptions.c.subscription_id == subscription_id,
                )
            ).first()
        if row is None:
            raise NotFoundError(f"subscription {subscription_id!r} not found for org {org_slug!r}")
        return _record(row)

    def list(self, org_slug: str) -> list[dict[str, Any]]:
        t = org_saas_subscriptions
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t).where(t.c.org_slug == org_slug).order_by(t.c.start_date, t.c.provider)
            ).all()
        return [_record(r) for r in rows]

    def remove(self, org_slug: str, subscription_id: str) -> None:
        t = org_saas_subscriptions
        with self.engine.begin() as conn:
            deleted = conn.execute(
                delete(t).where(t.c.org_slug == org_slug, t.c.subscription_id == subscription_id)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"subscription {subscription_id!r} not found for org {org_slug!r}")


class SqlSubscriptionReader:
    """processors.subscription.base.SubscriptionReader over the metadata DB (read only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def subscriptions(self, org_slug: str, start: date, end: date) -> list[Subscription]:
        t = org_saas_subscriptions
        overlapping = and_(
            t.c.org_slug == org_slug,
            t.c.start_date <= end,
            or_(t.c.end_date.is_(None), t.c.end_date >= start),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(overlapping).order_by(t.c.subscription_id)).all()
        return [
            Subscription(
                subscription_id=r.subscription_id,
                provider=r.provider,
                plan=r.plan,
                seats=int(r.seats),
                unit_price=Decimal(str(r.unit_price)),
                currency=r.currency,
                billing_cycle=r.billing_cycle,
                start_date=r.start_date,
                end_date=r.end_date,
            )
            for r in rows
        ]

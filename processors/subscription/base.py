"""What the subscription processor reads, and the protocol it reads it through.

Subscriptions live in the metadata DB, which processors may not reach (they must not
import pipeline/). pipeline/ implements `SubscriptionReader` (pipeline/subscriptions.py)
and hands it over as `ctx.readers["subscriptions"]`; tests hand over a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

BILLING_CYCLES = ("monthly", "quarterly", "annual")
READER_KEY = "subscriptions"


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    provider: str
    plan: str
    seats: int
    unit_price: Decimal  # per seat per billing cycle
    currency: str
    billing_cycle: str
    start_date: date
    end_date: date | None  # last day covered, inclusive


class SubscriptionReader(Protocol):
    def subscriptions(self, org_slug: str, start: date, end: date) -> list[Subscription]:
        """The org's subscriptions active on any day of [start, end]."""
        ...

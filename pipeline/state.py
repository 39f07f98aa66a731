"""The run state machine. Every change is a row in org_meta_state_transitions."""

from __future__ import annotations

PENDING = "pending"
VALIDATING = "validating"
QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE = frozenset({PENDING, VALIDATING, QUEUED, RUNNING})

# to_status -> the statuses it may be entered from.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    VALIDATING: frozenset({PENDING}),
    QUEUED: frozenset({VALIDATING}),
    RUNNING: frozenset({QUEUED}),
    COMPLETED: frozenset({RUNNING}),
    FAILED: frozenset({PENDING, VALIDATING, QUEUED, RUNNING}),
    CANCELLED: frozenset({PENDING, VALIDATING, QUEUED, RUNNING}),
}


def can_transition(from_status: str, to_status: str) -> bool:
    return from_status in ALLOWED_FROM.get(to_status, frozenset())

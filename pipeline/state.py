"""The run state machine. Every change is a row in org_meta_state_transitions."""

from __future__ import annotations

PENDING = "pending"
VALIDATING = "validating"
QUEUED = "queued"
RUNNING = "running"
# Cancel was requested while a step was executing: the run still holds its quota slot and
# idempotency key, and may no longer write, until that step has stopped.
CANCELLING = "cancelling"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE = frozenset({PENDING, VALIDATING, QUEUED, RUNNING, CANCELLING})
ALL = (PENDING, VALIDATING, QUEUED, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED)

# to_status -> the statuses it may be entered from.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    VALIDATING: frozenset({PENDING}),
    QUEUED: frozenset({VALIDATING}),
    RUNNING: frozenset({QUEUED}),
    CANCELLING: frozenset({RUNNING}),
    COMPLETED: frozenset({RUNNING}),
    FAILED: frozenset({PENDING, VALIDATING, QUEUED, RUNNING}),
    # From cancelling only once no step of the run is executing any more.
    CANCELLED: frozenset({PENDING, VALIDATING, QUEUED, CANCELLING}),
}


def can_transition(from_status: str, to_status: str) -> bool:
    return from_status in ALLOWED_FROM.get(to_status, frozenset())

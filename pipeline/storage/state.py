"""The run state machine: a run record's statuses and the moves between them. Every change
is a row in org_meta_state_transitions.

`allowed_from` is the rule, and the store is what applies it: a run moves with one
conditional UPDATE per status it names (statements.py), so no other check can disagree
with it and two processes racing to move the same run can't both win.
"""

from __future__ import annotations

from pipeline_ops_core.errors import IllegalTransitionError

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


def allowed_from(to_status: str) -> frozenset[str]:
    """The statuses a run may enter `to_status` from; IllegalTransitionError for a status
    no move enters (an unknown one, or `pending`, which only a new run has)."""
    allowed = ALLOWED_FROM.get(to_status)
    if allowed is None:
        raise IllegalTransitionError(f"unknown status {to_status!r}")
    return allowed

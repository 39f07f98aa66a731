"""The two error roots of Pipeline Ops and their named subclasses.

A leaf module: it imports nothing of ours, so every package may use it.
`TransientError` means "try again later" (retried by the step task);
`TerminalError` means "retrying will not help" (fails the step at once).
"""

from __future__ import annotations


class PipelineOpsError(Exception):
    """Base for every error this project raises on purpose."""

    code = "error"


class TransientError(PipelineOpsError):
    """A failure that may go away: provider 429/5xx, timeouts, a busy lock."""

    code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TerminalError(PipelineOpsError):
    """A failure that retrying cannot fix: bad input, bad credentials, 4xx."""

    code = "terminal"


class ConfigError(TerminalError):
    """A pipeline file is invalid. `problems` holds (step_id, message) pairs."""

    code = "invalid_config"

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [("-", message)]


class TemplateError(ConfigError):
    code = "template_error"


class UnknownProcessorError(ConfigError):
    code = "unknown_ps_type"


class NotFoundError(TerminalError):
    code = "not_found"


class ConflictError(TerminalError):
    """An active run already exists for the same idempotency key."""

    code = "run_active"

    def __init__(self, message: str, existing_run_id: str) -> None:
        super().__init__(message)
        self.existing_run_id = existing_run_id


class IllegalTransitionError(TerminalError):
    code = "illegal_transition"


class InvalidIdentifierError(TerminalError):
    code = "invalid_identifier"


class SubscriptionInactiveError(TerminalError):
    code = "subscription_inactive"


class QuotaExceededError(TerminalError):
    """A run was refused by the quota. `limit` is daily, monthly or concurrent."""

    code = "quota_exceeded"

    def __init__(self, limit: str, limit_value: int, current: int, retry_after: int) -> None:
        super().__init__(f"{limit} quota exceeded: {current} of {limit_value} used")
        self.limit = limit
        self.limit_value = limit_value
        self.current = current
        self.retry_after = retry_after


class WarehouseLockTimeout(TransientError):
    code = "warehouse_busy"


class AlreadyExistsError(TerminalError):
    code = "already_exists"


class RunNotActiveError(TerminalError):
    """The run already ended, so it can't be cancelled."""

    code = "run_not_active"


class RunCancelledError(PipelineOpsError):
    """The run is being cancelled (or has ended): its steps stop and may no longer write.

    Neither transient nor terminal: it is not the step's failure, and nothing retries it.
    """

    code = "run_cancelled"


class RunValidationError(TerminalError):
    """A recorded run failed validation; it ended `failed` and its slot was released."""

    code = "run_validation_failed"

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class ServiceUnavailableError(TransientError):
    """A dependency (database, broker, warehouse) is down."""

    code = "service_unavailable"

"""Per-process services for the tasks, built lazily from Settings by factories."""

from __future__ import annotations

import threading

from pipeline.services import Services, build_services
from pipeline.settings import Settings

_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    global _services
    with _lock:
        if _services is None:
            from tasks.canvas import CeleryDispatcher
            from tasks.notifications import CeleryNotificationQueue

            _services = build_services(
                Settings.from_env(), CeleryDispatcher(), notifications=CeleryNotificationQueue()
            )
        return _services


def use_services(value: Services | None) -> None:
    """Install services built elsewhere (tests, --local) for the tasks of this process."""
    global _services
    with _lock:
        _services = value


def reset_services() -> None:
    use_services(None)

"""The services of the tasks this process runs: pipeline.bootstrap.worker_services()."""

from __future__ import annotations

from pipeline.bootstrap import Services, use_worker_services, worker_services


def services() -> Services:
    return worker_services()


def use_services(value: Services | None) -> None:
    """Install services built elsewhere (tests) for the tasks of this process."""
    use_worker_services(value)


def reset_services() -> None:
    use_worker_services(None)

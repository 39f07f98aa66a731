"""The optional SDKs and the extra of the `pipeline-ops` package that installs each.

A production install carries only the clouds it uses (the `oci` SDK alone is ~500 MB):
`pip install 'pipeline-ops[oci]'`. A package that needs one calls `require()` before its
first SDK import, so a missing SDK is one clear error naming the extra, not a bare
ModuleNotFoundError from deep inside a step.
"""

from __future__ import annotations

import importlib.util

from pipeline_ops_core.errors import TerminalError

# extra -> the modules it provides (the first is what a check imports)
EXTRAS: dict[str, tuple[str, ...]] = {
    "bigquery": ("google.cloud.bigquery", "google.auth", "requests"),
    "aws": ("boto3", "botocore"),
    "azure": ("azure.storage.blob", "azure.core"),
    "oci": ("oci",),
    "supabase": ("supabase",),
}


class MissingExtraError(TerminalError, ImportError):
    """An optional SDK is not installed. An ImportError too, so code that already treats a
    failed import as "not available" keeps working; a TerminalError, so a step that hits it
    fails at once instead of being retried."""

    code = "missing_extra"

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(
            f"{what} needs the optional {extra!r} dependencies, which are not installed: "
            f"pip install 'pipeline-ops[{extra}]'"
        )
        self.extra = extra


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def installed(extra: str) -> bool:
    return all(_importable(m) for m in EXTRAS[extra])


def require(extra: str, what: str) -> None:
    """MissingExtraError unless every module of `extra` can be imported."""
    if not installed(extra):
        raise MissingExtraError(extra, what)

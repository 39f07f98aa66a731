"""A credential checked against its provider before it is stored.

`credentials add` (CLI) and `POST /admin/orgs/{org}/credentials` both call `checked_secret`:
the provider must be in the registry and take a credential, plain text goes into the field
its kind declares for it, and missing or unknown fields are refused, named, so a typo fails
at onboarding instead of in a worker minutes later. Messages name fields, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credentials.vault import parse_secret
from pipeline_ops_core.errors import TerminalError
from processors.providers import provider_info


class CredentialFieldsError(TerminalError):
    """The secret does not have the fields its provider's credential kind declares."""

    code = "invalid_credential"


def checked_secret(provider: str, raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The secret as the vault should store it, or CredentialFieldsError saying what is wrong."""
    info = provider_info(provider)  # TerminalError naming the known providers
    kind = info.credential
    if kind is None:
        raise CredentialFieldsError(
            f"provider {provider} takes no credential (credential_type: none): its pipelines "
            "run without one"
        )
    try:
        secret = parse_secret(raw, plain_field=kind.plain_field)
    except TerminalError as exc:
        raise CredentialFieldsError(
            f"{exc}; a credential of provider {provider} ({kind.key}) holds: {kind.summary()}"
        ) from None
    problems = kind.problems(secret)
    if problems:
        raise CredentialFieldsError(
            f"the {provider} credential ({kind.key}) was not stored: {'; '.join(problems)}"
        )
    return secret

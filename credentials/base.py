"""The credential contract: the worker asks for a decrypted credential by id.

`info` is metadata only (never decrypts), so the API can check a run's credential
before recording the run, while decryption stays in the worker (`get`).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from credentials.errors import CredentialError
from pipeline_ops_core.errors import NotFoundError
from pipeline_ops_core.identifiers import CREDENTIAL_ID_RE

DEFAULT_ID = "default"
CREDENTIAL_ID_DOC = "1-128 of lower-case letters, digits, _ and -"


@dataclass(frozen=True)
class CredentialInfo:
    credential_id: str
    # None: not bound to a provider (the implicit, empty `default`).
    provider: str | None
    enabled: bool = True
    stored: bool = True


# `default` with nothing stored under that id: "no secret", usable by any pipeline.
IMPLICIT_DEFAULT = CredentialInfo(DEFAULT_ID, None, enabled=True, stored=False)


class CredentialProvider(Protocol):
    def exists(self, org_slug: str, credential_id: str) -> bool: ...

    def info(self, org_slug: str, credential_id: str) -> CredentialInfo | None:
        """Metadata of a credential, or None if the org has no such credential."""

    def get(self, org_slug: str, credential_id: str) -> Mapping[str, Any]:
        """Decrypt and return the credential. Worker-side only; never log the result."""


class CredentialVault(CredentialProvider, Protocol):
    """The vault's administration (the admin API, the CLI). Returns metadata, never a secret."""

    def add(
        self,
        org_slug: str,
        provider: str,
        name: str,
        secret: str | bytes | Mapping[str, Any],
        credential_id: str | None = None,
    ) -> dict[str, Any]: ...

    def list(self, org_slug: str | None = None) -> list[dict[str, Any]]: ...

    def set_enabled(self, org_slug: str, credential_id: str, enabled: bool) -> dict[str, Any]: ...

    def delete(self, org_slug: str, credential_id: str) -> None: ...

    # `builtins.list`: inside this class `list` names the method above.
    def check_keys(self) -> tuple[int, builtins.list[str]]:
        """Whether this process's master key opens the stored data keys (`doctor`)."""
        ...


class NoCredentials:
    """No vault: only `default`, and it is empty.

    Pipelines that need no secret (sample data, local files, procedures) run with it.
    """

    def exists(self, org_slug: str, credential_id: str) -> bool:
        return credential_id == DEFAULT_ID

    def info(self, org_slug: str, credential_id: str) -> CredentialInfo | None:
        return IMPLICIT_DEFAULT if credential_id == DEFAULT_ID else None

    def get(self, org_slug: str, credential_id: str) -> Mapping[str, Any]:
        if credential_id != DEFAULT_ID:
            raise NotFoundError(f"credential {credential_id!r} not found for org {org_slug!r}")
        return {}


def check_usable(
    credentials: CredentialProvider,
    org_slug: str,
    credential_id: str,
    provider: str,
    pipeline_id: str,
) -> CredentialInfo:
    """The credential a run asks for exists, is enabled and is for the pipeline's provider.

    Raises CredentialError (422) before anything is recorded.
    """
    if not isinstance(credential_id, str) or CREDENTIAL_ID_RE.fullmatch(credential_id) is None:
        shown = repr(credential_id)[:60]
        raise CredentialError(f"invalid credential id {shown}: use {CREDENTIAL_ID_DOC}")
    info = credentials.info(org_slug, credential_id)
    if info is None:
        raise CredentialError(f"credential {credential_id!r} not found for org {org_slug!r}")
    if not info.enabled:
        raise CredentialError(f"credential {credential_id!r} of org {org_slug!r} is disabled")
    if info.provider is not None and info.provider != provider:
        raise CredentialError(
            f"credential {credential_id!r} is for provider {info.provider!r}, but pipeline "
            f"{pipeline_id} needs a {provider!r} credential"
        )
    return info

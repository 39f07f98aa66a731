"""The credential contract: the worker asks for a decrypted credential by id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from errors import NotFoundError


class CredentialProvider(Protocol):
    def exists(self, org_slug: str, credential_id: str) -> bool: ...

    def get(self, org_slug: str, credential_id: str) -> Mapping[str, Any]:
        """Decrypt and return the credential. Worker-side only; never log the result."""


class NoCredentials:
    """The embedded default until the vault is configured: only `default`, and it is empty.

    Pipelines that need no secret (sample data, local files, procedures) run with it.
    """

    def exists(self, org_slug: str, credential_id: str) -> bool:
        return credential_id == "default"

    def get(self, org_slug: str, credential_id: str) -> Mapping[str, Any]:
        if credential_id != "default":
            raise NotFoundError(f"credential {credential_id!r} not found for org {org_slug!r}")
        return {}

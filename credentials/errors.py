"""Errors of the credential vault. Messages name orgs, ids and key ids, never secret values."""

from __future__ import annotations

from pipeline_ops_core.errors import TerminalError


class CredentialError(TerminalError):
    """A credential can't be used as asked: missing, disabled, or for another provider."""

    code = "invalid_credential"


class DecryptionError(CredentialError):
    """A stored credential did not decrypt: altered, moved to another row, or wrong key."""

    code = "credential_decrypt_failed"


class MasterKeyError(DecryptionError):
    """The master key configuration itself is unusable (bad base64, wrong length, mode)."""

    code = "master_key_invalid"


class KeyUnavailableError(DecryptionError):
    """A row was sealed under a master key id this process does not hold."""

    code = "master_key_unavailable"


class UnwrapError(DecryptionError):
    code = "data_key_unwrap_failed"

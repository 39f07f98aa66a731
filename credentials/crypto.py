"""AES-256-GCM envelope encryption of one credential.

Each credential gets its own random data key. The secret is encrypted with the
data key; the data key is wrapped by the master key (through a KeyProvider). Only
the wrapped data key depends on the master key, so a master-key rotation re-wraps
32 bytes per credential and never touches the ciphertext.

The associated data of the secret binds org_slug, credential_id and provider: a
ciphertext copied into another org's row (or relabelled for another provider)
fails authentication instead of decrypting for the wrong tenant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credentials.errors import DecryptionError
from credentials.keys import NONCE_BYTES, KeyProvider

VERSION = b"pipeline-ops/credential/v1"


@dataclass(frozen=True)
class Sealed:
    key_id: str
    wrapped_key: bytes  # wrap nonce + AES-GCM(master key, data key)
    nonce: bytes
    ciphertext: bytes  # AES-GCM(data key, secret JSON), tag included


def secret_aad(org_slug: str, credential_id: str, provider: str) -> bytes:
    # NUL separators: slugs and ids can't contain NUL, so no two triples collide.
    return b"\0".join((VERSION, org_slug.encode(), credential_id.encode(), provider.encode()))


def wrap_aad(key_id: str) -> bytes:
    return b"\0".join((VERSION, b"data-key", key_id.encode()))


def encode_secret(secret: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(secret), separators=(",", ":"), sort_keys=True).encode()


def seal(
    keys: KeyProvider, org_slug: str, credential_id: str, provider: str, secret: Mapping[str, Any]
) -> Sealed:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(
        nonce, encode_secret(secret), secret_aad(org_slug, credential_id, provider)
    )
    key_id = keys.current_key_id()
    key_id, wrapped = keys.wrap(data_key, wrap_aad(key_id), key_id)
    return Sealed(key_id, wrapped, nonce, ciphertext)


def unwrap_data_key(keys: KeyProvider, key_id: str, wrapped_key: bytes) -> bytes:
    """The data key a credential was sealed with (KeyUnavailableError, UnwrapError)."""
    return keys.unwrap(key_id, bytes(wrapped_key), wrap_aad(key_id))


def open_sealed(
    keys: KeyProvider, org_slug: str, credential_id: str, provider: str, sealed: Sealed
) -> dict[str, Any]:
    """Decrypt; DecryptionError (with org and id, never plaintext) on any mismatch."""
    data_key = unwrap_data_key(keys, sealed.key_id, sealed.wrapped_key)
    try:
        plaintext = AESGCM(data_key).decrypt(
            bytes(sealed.nonce),
            bytes(sealed.ciphertext),
            secret_aad(org_slug, credential_id, provider),
        )
    except (InvalidTag, ValueError):
        raise DecryptionError(
            f"credential ciphertext does not belong to org {org_slug} / credential "
            f"{credential_id} (provider {provider}): it was copied from another row or altered"
        ) from None
    value = json.loads(plaintext)
    if not isinstance(value, dict):  # only ever sealed from a mapping; never echo it
        raise DecryptionError(f"credential {org_slug}/{credential_id} is not a JSON object")
    return value


def rewrap(
    keys: KeyProvider, key_id: str, wrapped_key: bytes, new_key_id: str
) -> tuple[str, bytes]:
    """The same data key wrapped under `new_key_id`; the ciphertext is not involved."""
    data_key = keys.unwrap(key_id, bytes(wrapped_key), wrap_aad(key_id))
    return keys.wrap(data_key, wrap_aad(new_key_id), new_key_id)

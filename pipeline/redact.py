"""Secret redaction for everything we log or store: log lines, error messages, downloads.

Two layers: known secret values registered at runtime (credentials decrypted in
this process, the admin key), and patterns for secrets we never registered
(Authorization headers, provider key shapes, our own org API keys).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "[REDACTED]"

_PATTERNS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer\s+|basic\s+)?[^\s,;'\"}]+"),
    re.compile(
        r"(?i)((?:x-api-key|api[_-]?key|apikey|password|secret|token)\s*[\"']?\s*[:=]\s*[\"']?)[^\s,;'\"}&]+"
    ),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    # user:password@ in URLs (database and broker URLs in error messages)
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(?=@)"),
    re.compile(r"\bpo_[A-Za-z0-9_\-]{16,}"),
]

_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it shows up later."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def register_secrets(value: Any) -> None:
    """Register every string inside a decrypted credential (nested mappings and lists).

    Each line of a multi-line value (a PEM key) is registered too, so a single
    echoed line is masked as well as the whole value.
    """
    if isinstance(value, str):
        register_secret(value)
        if "\n" in value:
            for line in value.splitlines():
                register_secret(line.strip())
    elif isinstance(value, Mapping):
        for item in value.values():
            register_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            register_secrets(item)


def display_url(url: str) -> str:
    """A server URL to show people: its password masked, and no mask where none was set."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def redact(text: str | None) -> str | None:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + MASK, text)
    return text

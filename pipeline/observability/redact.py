"""Secret redaction for everything we log or store: log lines, error messages, downloads.

Two layers:

- known secret values, registered at runtime. Operator secrets from the environment
  (admin key, master keys) are masked for the life of the process. A tenant's secrets
  are registered only for the step (or notification) that decrypted them, in a scope
  (`secret_scope()`), and only the fields its credential kind declares secret: masking
  every string of every credential for every org rewrote other orgs' logs (`completed`,
  another org's slug) and made each redaction cost grow with every credential seen.
- patterns for secrets nobody registered (Authorization headers, provider key shapes,
  our own org API keys), always on.
"""

from __future__ import annotations

import contextvars
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "[REDACTED]"
# Shorter values are never registered: they are words, not secrets, and masking them
# rewrites ordinary text.
MIN_SECRET_CHARS = 8

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

# Operator secrets: the whole process's life.
_process: set[str] = set()
_lock = threading.Lock()
# Tenant secrets: the current step's scope. A set shared by the threads the step hands
# its context to (the heartbeat), dropped when the step ends.
_scope: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "pipeline_ops_secret_scope", default=None
)


def _candidates(value: str) -> Iterator[str]:
    """The value, and each line of a multi-line one (a PEM key), so an echoed line is
    masked as well as the whole value."""
    yield value
    if "\n" in value:
        for line in value.splitlines():
            yield line.strip()


def register_process_secrets(values: Iterable[str | None]) -> None:
    """Operator secrets (from the environment): masked in everything this process writes."""
    with _lock:
        for value in values:
            if value:
                _process.update(v for v in _candidates(value) if len(v) >= MIN_SECRET_CHARS)


def register_secret(value: str | None) -> None:
    """Mask `value` for the rest of the current scope (the step that decrypted it).

    Outside any scope it is kept for the whole process: a secret is never left unmasked,
    but every path that decrypts a tenant's secret opens a scope first.
    """
    if not value:
        return
    found = [v for v in _candidates(value) if len(v) >= MIN_SECRET_CHARS]
    scope = _scope.get()
    if scope is None:
        register_process_secrets(found)
        return
    scope.update(found)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def register_credential(kind: Any, secret: Mapping[str, Any]) -> None:
    """Register the declared secret fields of a decrypted credential.

    `kind` is its `CredentialType` (processors/credential_types.py). A credential of a
    provider that declares no kind has no declaration to go by: its text values are all
    treated as secrets, for this scope only.
    """
    if kind is not None:
        register_secrets(kind.secret_values(secret))
        return
    register_secrets(_strings(secret))


def register_decrypted(provider: str, secret: Mapping[str, Any]) -> None:
    """The vault's `on_decrypt`: register a credential by its provider's declared kind."""
    from processors.providers import load_registry

    try:
        info = load_registry().get(provider)
    except Exception:  # an unreadable registry must not leave the secret unmasked
        info = None
    register_credential(info.credential if info is not None else None, secret)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@contextmanager
def secret_scope() -> Iterator[set[str]]:
    """A scope for the secrets one step (or one notification) decrypts; emptied at its end.

    Threads that must mask them too run in a copy of this context
    (`contextvars.copy_context()`), which shares the scope's set.
    """
    scope: set[str] = set()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        scope.clear()


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
        known = set(_process)
    known.update(_scope.get() or ())
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + MASK, text)
    return text


def cap_text(text: str | None, limit: int) -> str | None:
    """`text` cut to at most `limit` bytes of UTF-8, with a note of how much was dropped.

    Error texts come from providers and tenants; uncapped, a 5 MiB answer was stored in
    the run, its attempt, its transition and a log line, and returned by GET /status.
    """
    if text is None:
        return None
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    earlier = _NOTE_RE.search(text)
    if earlier is not None:
        # Cut once already (then prefixed, e.g. "step x failed: …"): keep the first note,
        # which says how much of the original was dropped, and shorten what precedes it.
        note = earlier.group(0)
        room = max(0, limit - len(note.encode("utf-8")))
        return text[: earlier.start()].encode("utf-8")[:room].decode("utf-8", "ignore") + note
    # The note is at most _NOTE_BYTES long, so head + note stays within the limit.
    head = data[: max(0, limit - _NOTE_BYTES)].decode("utf-8", errors="ignore")
    return head + f"… [truncated {_size(len(data) - len(head.encode('utf-8')))}]"


_NOTE_BYTES = 40
_NOTE_RE = re.compile(r"… \[truncated [0-9.]+ (?:MiB|KiB|bytes)\]\Z")


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"

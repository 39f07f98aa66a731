"""The egress policy for the cloud SDKs: boto3, azure-storage-blob, oci, google-auth and
google-cloud-bigquery.

All of them open their connections through urllib3 (botocore directly, the others through
requests). While `guarded(...)` is active in a thread, every new urllib3 connection made
there is decided by `egress.EgressPolicy` first and then goes to the very address that was
checked: the SDK's own lookup of the name never happens, so a DNS answer that changes in
between can't steer it (TLS still checks the certificate against the name). Outside a
guard, urllib3 behaves as always: the platform's own connections (the warehouse's
BigQuery client, Supabase) are not tenant-chosen.

The guard lives in a context variable, so it covers the step's thread only; the SDK calls
the processors make (get_object, list_blobs, list_objects, token refresh, query) all run
in that thread.
"""

from __future__ import annotations

import contextvars
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3.util.connection as urllib3_connection

from pipeline_ops_core.egress import EgressPolicy, EgressRefused, EgressUnresolved, policy


@dataclass(frozen=True)
class _Guard:
    policy: EgressPolicy
    where: str
    hosts: tuple[str, ...] | None


_ACTIVE: contextvars.ContextVar[_Guard | None] = contextvars.ContextVar(
    "pipeline_ops_egress_guard", default=None
)
_original_create_connection = urllib3_connection.create_connection


def _create_connection(
    address: tuple[str, int],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
    socket_options: Any = None,
) -> socket.socket:
    guard = _ACTIVE.get()
    if guard is None:
        return _original_create_connection(address, timeout, source_address, socket_options)
    host, port = address
    # urllib3 doesn't say whether TLS follows; the endpoint URLs were checked for https
    # before the client was built, so the connection is decided as https.
    try:
        vetted = guard.policy.vet("https", host, port, guard.where, guard.hosts)
    except EgressUnresolved as exc:
        raise OSError(str(exc)) from None
    last: OSError | None = None
    for ip in vetted.addresses:
        try:
            return _original_create_connection((ip, port), timeout, source_address, socket_options)
        except OSError as exc:
            last = exc
    raise last or OSError(f"cannot connect to {host}")


urllib3_connection.create_connection = _create_connection


@contextmanager
def guarded(
    where: str, hosts: Iterable[str] | None, egress: EgressPolicy | None = None
) -> Iterator[None]:
    """Every SDK connection this thread opens inside the block passes the policy.

    `where` names the credential field that chose the endpoint (it is in every refusal);
    `hosts` are the provider's well-known hosts for it.
    """
    token = _ACTIVE.set(_Guard(egress or policy(), where, tuple(hosts) if hosts else None))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def refusal_in(exc: BaseException) -> EgressRefused | None:
    """The egress refusal an SDK wrapped in its own error (botocore's HTTPClientError
    keeps it in `kwargs["error"]`), so the step reports the refusal, not "cannot reach"."""
    stack: list[object] = [exc]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, EgressRefused):
            return item
        kwargs = getattr(item, "kwargs", None)
        stack += [item.__cause__, item.__context__, *item.args]
        if isinstance(kwargs, dict):
            stack.append(kwargs.get("error"))
    return None

"""The egress policy: every outbound connection whose host comes from tenant data.

A tenant chooses hosts through its credentials (`base_url`, `token_uri`, endpoint
overrides) and notification settings (webhook and Slack URLs). Without a policy the
worker would connect wherever it is told: the cloud metadata service, the broker's
Redis, anything on the private network. Every such connection is decided here, once:

- A host the operator lists in PIPELINE_OPS_EGRESS_ALLOW (`host[:port]` patterns) is
  allowed, over http or https, whatever it resolves to (cloud-metadata addresses
  excepted: nothing needs them).
- Otherwise the URL must be https, the host must be one of the field's well-known
  provider hosts (`hosts`; None means any public host, as for webhooks), and EVERY
  address the name resolves to must be public: no loopback, private, link-local, CGNAT,
  unspecified, multicast, reserved or metadata address, including the IPv4-mapped,
  6to4 and NAT64 spellings of one.
- The connection then goes to the address that was checked (`VettedBackend`), not to a
  second lookup of the name, so a DNS answer that changes in between (rebinding) can't
  redirect it. TLS still verifies the certificate against the name.

The same module holds the caps on what comes back over those connections (`Limits`):
a total deadline per HTTP call, body and object sizes, decompressed size and ratio,
and pages per listing. Crossing one is a `LimitExceeded` naming the cap and its setting.

A leaf: it imports only `errors` and the standard library (plus httpx/httpcore for the
HTTP client), so processors, notify and the API may all use it.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import os
import socket
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpcore
import httpx

from pipeline_ops_core.errors import TerminalError

ALLOW_ENV = "PIPELINE_OPS_EGRESS_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

# Link-local metadata services of the clouds (AWS, GCP, Azure, OCI: 169.254.169.254; AWS's
# IPv6 one; Alibaba's 100.100.100.200). Refused even for allow-listed hosts.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# Names that only mean something inside a cloud or a host; refused before any lookup, so
# not even a DNS query leaves for them.
REFUSED_NAMES = ("localhost", "metadata", "metadata.google.internal", "instance-data")
REFUSED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".arpa")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TEREDO = ipaddress.ip_network("2001::/32")


class EgressRefused(TerminalError):
    """The policy refused a destination. The message names the field and the reason."""

    code = "egress_refused"


class LimitExceeded(TerminalError):
    """A resource cap was crossed; the message names the cap and the setting that sets it."""

    code = "limit_exceeded"

    def __init__(self, what: str, limit: str, setting: str) -> None:
        super().__init__(f"{what} exceeds the cap of {limit} (setting {setting})")
        self.setting = setting


# -- caps ------------------------------------------------------------------------------------

MiB = 1024 * 1024


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """Caps on what a worker takes in from outside. Defaults fit a 2-core / 24 GiB worker
    running two processes: each cap keeps one step well under half the memory."""

    http_deadline_seconds: float = 120.0
    max_http_body_bytes: int = 64 * MiB
    max_object_bytes: int = 1024 * MiB
    max_inflated_bytes: int = 2048 * MiB
    max_inflate_ratio: float = 200.0
    max_pages: int = 1000
    # Objects up to this size stay in memory; bigger ones spill to a temp file.
    spool_bytes: int = 8 * MiB

    SETTINGS = {
        "http_deadline_seconds": "PIPELINE_OPS_HTTP_DEADLINE_SECONDS",
        "max_http_body_bytes": "PIPELINE_OPS_MAX_HTTP_BODY_BYTES",
        "max_object_bytes": "PIPELINE_OPS_MAX_OBJECT_BYTES",
        "max_inflated_bytes": "PIPELINE_OPS_MAX_INFLATED_BYTES",
        "max_inflate_ratio": "PIPELINE_OPS_MAX_INFLATE_RATIO",
        "max_pages": "PIPELINE_OPS_MAX_PAGES",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        base = cls()
        values: dict[str, Any] = {}
        for name, setting in cls.SETTINGS.items():
            default = getattr(base, name)
            number = _env_number(env, setting, default)
            values[name] = int(number) if isinstance(default, int) else number
        return cls(**values)

    def exceeded(self, what: str, name: str) -> LimitExceeded:
        value = getattr(self, name)
        shown = f"{value} s" if name.endswith("seconds") else _size(value, name)
        return LimitExceeded(what, shown, self.SETTINGS[name])


def _size(value: float, name: str) -> str:
    if not name.endswith("bytes"):
        return f"{value:g}"
    return f"{value / MiB:g} MiB" if value >= MiB else f"{int(value)} bytes"


# -- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPattern:
    host: str  # normalized; a leading "*." matches any subdomain, "*" any host
    port: int | None  # None: any port

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return host_matches(host, self.host)


def host_matches(host: str, pattern: str) -> bool:
    """`pattern` is a host name, an IP, `*.suffix` (one or more labels) or `*`."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return fnmatch.fnmatchcase(host, pattern) if "*" in pattern else host == pattern


def parse_allow_list(text: str) -> tuple[HostPattern, ...]:
    """`host[:port]` patterns, comma- or space-separated; port `*` (or none) is any port."""
    patterns = []
    for item in text.replace(",", " ").split():
        host, port = item, "*"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else "*"
        elif item.count(":") == 1:
            host, port = item.split(":")
        if port != "*" and not port.isdigit():
            raise ValueError(f"{ALLOW_ENV}: bad port in {item!r}")
        normalized = host.lower() if "*" in host else normalize_host(host, ALLOW_ENV)
        patterns.append(HostPattern(normalized, None if port == "*" else int(port)))
    return tuple(patterns)


def normalize_host(raw: str, where: str) -> str:
    """The host as compared and resolved: IPs in their canonical text, names lower-case
    IDNA (A-labels) without the trailing dot. Anything else is refused."""
    host = raw.strip()
    if not host or any(ord(ch) < 33 or ch in "\\/@?#%" for ch in host):
        raise EgressRefused(f"{where}: the host is not a valid host name")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if ":" in host:
        raise EgressRefused(f"{where}: the host is not a valid host name")
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    try:
        # Python's IDNA codec applies nameprep: full-width letters and dots, upper case.
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise EgressRefused(f"{where}: the host is not a valid host name") from None
    numeric = _numeric_address(ascii_host)
    return str(numeric) if numeric is not None else ascii_host


def _numeric_address(host: str) -> IPAddress | None:
    """The address a numeric spelling means (0x7f000001, 2130706433, 0177.0.0.1, 127.1),
    parsed by the C library exactly as a connect would, without any lookup."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%")[0]) if infos else None


def address_problem(address: IPAddress) -> str | None:
    """Why a connection to `address` is refused, or None for a public address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address) and int(address) > 1:  # not :: or ::1
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_problem(embedded)
            return f"{inner} (IPv4 inside IPv6)" if inner else None
        if address in _TEREDO:
            return "a tunnelled (Teredo) address"
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "a CGNAT address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for bad, reason in checks if bad), None)


def is_metadata(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and int(address) > 1:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return embedded in METADATA_ADDRESSES
    return address in METADATA_ADDRESSES


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64) or int(address) >> 32 == 0:
        # NAT64 prefixes and the old IPv4-compatible ::a.b.c.d carry the address last.
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def name_problem(host: str) -> str | None:
    if host in REFUSED_NAMES or host.endswith(REFUSED_SUFFIXES):
        return "an internal host name"
    if "." not in host:
        return "a single-label (intranet) host name"
    return None


@dataclass(frozen=True)
class Vetted:
    """A destination that passed: connect to `addresses` (in order), speak to `host`."""

    host: str
    port: int
    addresses: tuple[str, ...]
    allow_listed: bool


@dataclass(frozen=True)
class EgressPolicy:
    allow: tuple[HostPattern, ...] = ()
    resolver: Resolver = field(default=socket.getaddrinfo, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EgressPolicy:
        env = os.environ if environ is None else environ
        return cls(parse_allow_list(env.get(ALLOW_ENV, "")))

    def allow_listed(self, host: str, port: int) -> bool:
        return any(p.matches(host, port) for p in self.allow)

    def check_url(self, url: str, where: str, hosts: Iterable[str] | None = None) -> str:
        """Check a URL without resolving it (what can be decided when it is saved):
        scheme, host name, and whether it is a known host or allow-listed. Returns the
        normalized host."""
        scheme, host, port = split_url(url, where)
        self._static(scheme, host, port, where, hosts)
        return host

    def vet(
        self, scheme: str, host: str, port: int, where: str, hosts: Iterable[str] | None = None
    ) -> Vetted:
        host = normalize_host(host, where)
        listed = self._static(scheme, host, port, where, hosts)
        addresses = self._resolve(host, port, where)
        for address in addresses:
            problem = address_problem(address)
            if is_metadata(address) or (problem and not listed):
                shown = "it" if _is_ip(host) else f"{host} resolves to an address that"
                raise EgressRefused(
                    f"{where}: refused by the egress policy: {shown} is {problem}; "
                    f"only hosts the operator lists in {ALLOW_ENV} may be private"
                )
        return Vetted(host, port, tuple(str(a) for a in addresses), listed)

    def _static(
        self, scheme: str, host: str, port: int, where: str, hosts: Iterable[str] | None
    ) -> bool:
        literal = _literal(host)
        if literal is not None and is_metadata(literal):
            raise EgressRefused(f"{where}: refused by the egress policy: a cloud metadata address")
        if self.allow_listed(host, port):
            return True
        problem = address_problem(literal) if literal is not None else name_problem(host)
        if problem:
            raise EgressRefused(
                f"{where}: refused by the egress policy: the host is {problem}; "
                f"only hosts the operator lists in {ALLOW_ENV} may be private"
            )
        if scheme != "https":
            raise EgressRefused(
                f"{where}: must be an https URL (http only for hosts in {ALLOW_ENV})"
            )
        known = tuple(hosts) if hosts is not None else None
        if known is not None and not any(host_matches(host, p) for p in known):
            raise EgressRefused(
                f"{where}: {host} is not a known endpoint for this field "
                f"(expected {', '.join(known)}); the operator may add it to {ALLOW_ENV}"
            )
        return False

    def _resolve(self, host: str, port: int, where: str) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            # A lookup failure may be passing; the caller decides whether to retry.
            raise EgressUnresolved(f"{where}: cannot resolve {host}") from exc
        found = list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos))
        if not found:
            raise EgressUnresolved(f"{where}: cannot resolve {host}")
        return found


class EgressUnresolved(OSError):
    """A name that did not resolve: a connection error, not a policy refusal."""


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_ip(host: str) -> bool:
    return _literal(host) is not None


def split_url(url: str, where: str) -> tuple[str, str, int]:
    """(scheme, normalized host, port) of an http(s) URL; anything odd is refused."""
    if not isinstance(url, str) or any(ord(ch) < 32 or ch in " \\" for ch in url.strip()):
        raise EgressRefused(f"{where}: must be an http(s) URL without spaces or backslashes")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise EgressRefused(f"{where}: must be an http(s) URL")
    if "@" in parts.netloc:
        raise EgressRefused(f"{where}: must not carry a user name or password")
    try:
        port = parts.port
    except ValueError:
        raise EgressRefused(f"{where}: the port is not a number from 1 to 65535") from None
    raw_host = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    if port == 0:
        raise EgressRefused(f"{where}: the port is not a number from 1 to 65535")
    host = normalize_host(raw_host, where)
    return scheme, host, port or (443 if scheme == "https" else 80)


def policy() -> EgressPolicy:
    """The policy of this process, from PIPELINE_OPS_EGRESS_ALLOW as it is now."""
    return EgressPolicy.from_env()


# -- HTTP through the policy -----------------------------------------------------------------


class _Clock:
    """The deadline of the request in flight on one client (one thread uses a client)."""

    def __init__(self, limits: Limits) -> None:
        self.deadline: float | None = None
        self.limits = limits

    def remaining(self, timeout: float | None) -> float | None:
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.limits.exceeded("the HTTP call's total time", "http_deadline_seconds")
        return left if timeout is None else min(timeout, left)

    def timed_out(self) -> None:
        """After a socket timeout: the deadline's error if that is what ran out."""
        if self.deadline is not None and self.deadline - time.monotonic() < 0.05:
            raise self.limits.exceeded("the HTTP call's total time", "http_deadline_seconds")


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write is bounded by the call's total deadline,
    so a server trickling one byte at a time can't outlast it (httpx's timeouts are per
    read)."""

    def __init__(self, inner: httpcore.NetworkStream, clock: _Clock) -> None:
        self._inner, self._clock = inner, clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._inner.read(max_bytes, self._clock.remaining(timeout))
        except httpcore.TimeoutException:
            self._clock.timed_out()
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._inner.write(buffer, self._clock.remaining(timeout))
        except httpcore.TimeoutException:
            self._clock.timed_out()
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        try:
            tls = self._inner.start_tls(
                ssl_context, server_hostname, self._clock.remaining(timeout)
            )
        except httpcore.TimeoutException:
            self._clock.timed_out()
            raise
        return _DeadlineStream(tls, self._clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class VettedBackend(httpcore.NetworkBackend):
    """httpcore's network backend with the policy at connect time: the name httpx wants to
    reach is decided and resolved here, and the socket goes to the checked address."""

    def __init__(
        self,
        policy: EgressPolicy,
        where: str,
        hosts: Iterable[str] | None,
        scheme: str,
        limits: Limits,
    ) -> None:
        self.policy, self.where, self.scheme = policy, where, scheme
        self.hosts = tuple(hosts) if hosts is not None else None
        self.clock = _Clock(limits)
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            vetted = self.policy.vet(self.scheme, host, port, self.where, self.hosts)
        except EgressUnresolved as exc:
            raise httpcore.ConnectError(str(exc)) from None
        last: Exception | None = None
        for address in vetted.addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, self.clock.remaining(timeout), local_address, socket_options
                )
            except httpcore.ConnectTimeout:
                self.clock.timed_out()
                raise
            except httpcore.ConnectError as exc:
                last = exc
                continue
            return _DeadlineStream(stream, self.clock)
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise EgressRefused(f"{self.where}: unix sockets are not an egress destination")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _VettedTransport(httpx.HTTPTransport):
    def __init__(self, backend: VettedBackend) -> None:
        super().__init__(trust_env=False)
        # Same pool as httpx builds, with the vetting backend and no environment proxy
        # (a proxy would connect to the target for us, past the policy).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=4,
            max_keepalive_connections=2,
            network_backend=backend,
        )


@dataclass(frozen=True)
class Fetched:
    """A whole, capped HTTP answer (the body already decompressed)."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class EgressClient:
    """HTTP to one tenant-chosen (or provider) endpoint, through the policy and the caps.

    `where` names the setting the URL came from (it goes into every refusal); `hosts` are
    its well-known provider hosts (None: any public host). Redirects are never followed:
    a 3xx is an answer like any other, for the caller to report by status.
    """

    def __init__(
        self,
        where: str,
        hosts: Iterable[str] | None = None,
        *,
        scheme: str = "https",
        limits: Limits | None = None,
        egress: EgressPolicy | None = None,
        timeout: float = 30.0,
        echo: bool = True,
    ) -> None:
        self.where = where
        # False for a tenant-chosen endpoint: what it answers must not reach tenant-visible
        # text (callers then report the status and a fixed message only).
        self.echo = echo
        self.limits = limits or Limits.from_env()
        self.policy = egress or policy()
        self.hosts = tuple(hosts) if hosts is not None else None
        self._backends: dict[str, VettedBackend] = {}
        self._clients: dict[str, httpx.Client] = {}
        self.timeout = timeout

    def _client(self, scheme: str) -> tuple[httpx.Client, VettedBackend]:
        if scheme not in self._clients:
            backend = VettedBackend(self.policy, self.where, self.hosts, scheme, self.limits)
            self._backends[scheme] = backend
            self._clients[scheme] = httpx.Client(
                transport=_VettedTransport(backend),
                follow_redirects=False,
                trust_env=False,
                timeout=self.timeout,
            )
        return self._clients[scheme], self._backends[scheme]

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        content: bytes | None = None,
    ) -> Fetched:
        scheme, _, _ = split_url(url, self.where)
        # Decided before anything is sent, so a refusal names the field, not a socket error.
        self.policy.check_url(url, self.where, self.hosts)
        client, backend = self._client(scheme)
        backend.clock.deadline = time.monotonic() + self.limits.http_deadline_seconds
        sent = {"Accept-Encoding": "gzip, deflate, identity", **(headers or {})}
        try:
            with client.stream(
                method, url, headers=sent, params=params, content=content
            ) as response:
                body = read_capped(
                    response.iter_raw(),
                    response.headers.get("Content-Encoding", ""),
                    self.limits,
                    f"the answer from {self.where}",
                )
                return Fetched(response.status_code, response.headers, body)
        finally:
            backend.clock.deadline = None

    def get(self, url: str, **kwargs: Any) -> Fetched:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Fetched:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> EgressClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_capped(chunks: Iterable[bytes], encoding: str, limits: Limits, what: str) -> bytes:
    """A body from raw chunks: decompressed with the inflate caps, at most the body cap."""
    encoding = encoding.strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise TerminalError(f"{what} uses Content-Encoding {encoding!r}, which is not accepted")
    source: Iterable[bytes] = chunks
    if encoding not in ("", "identity"):
        source = inflate(chunks, limits, what, gzip=encoding != "deflate")
    out = bytearray()
    for chunk in source:
        out += chunk
        if len(out) > limits.max_http_body_bytes:
            raise limits.exceeded(what, "max_http_body_bytes")
    return bytes(out)


# -- decompression and object reads with caps ------------------------------------------------

_OUT_CHUNK = 1 * MiB
# The ratio cap only applies past this much output: small, very regular files are fine.
_RATIO_FLOOR = 16 * MiB


def inflate(
    chunks: Iterable[bytes], limits: Limits, what: str, *, gzip: bool = True
) -> Iterator[bytes]:
    """Decompress a gzip (all members) or zlib stream chunk by chunk, never holding more
    than about a megabyte of output, and stop at the inflated-size or ratio cap."""
    wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    taken = given = 0
    for chunk in chunks:
        taken += len(chunk)
        data = chunk
        while data:
            piece = decoder.decompress(data, _OUT_CHUNK)
            given += len(piece)
            _check_inflated(given, taken, limits, what)
            if piece:
                yield piece
            if decoder.eof:
                data = decoder.unused_data
                if data and gzip:  # the next gzip member
                    decoder = zlib.decompressobj(wbits)
                    continue
                if data.strip(b"\x00"):
                    raise zlib.error("trailing garbage after the compressed data")
                break
            data = decoder.unconsumed_tail
    tail = decoder.flush()
    given += len(tail)
    _check_inflated(given, taken, limits, what)
    if tail:
        yield tail
    if not decoder.eof and taken:
        raise EOFError("the compressed data ends early")


def _check_inflated(given: int, taken: int, limits: Limits, what: str) -> None:
    if given > limits.max_inflated_bytes:
        raise limits.exceeded(f"{what} (decompressed)", "max_inflated_bytes")
    if given > _RATIO_FLOOR and given > limits.max_inflate_ratio * max(taken, 1):
        raise limits.exceeded(f"{what} (decompression ratio)", "max_inflate_ratio")


def spool(
    chunks: Iterable[bytes],
    limits: Limits,
    what: str,
    *,
    size: int | None = None,
    cap: str = "max_object_bytes",
) -> BinaryIO:
    """Copy a stream into a temp file (memory while small) of at most the `cap` limit;
    returned rewound. `size`, when the store told it up front, is checked first."""
    import tempfile

    most = getattr(limits, cap)
    if size is not None and size > most:
        raise limits.exceeded(f"{what} ({size} bytes)", cap)
    out = tempfile.SpooledTemporaryFile(max_size=limits.spool_bytes)  # noqa: SIM115
    written = 0
    try:
        for chunk in chunks:
            written += len(chunk)
            if written > most:
                raise limits.exceeded(what, cap)
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out  # type: ignore[return-value]


def file_chunks(handle: BinaryIO, size: int = _OUT_CHUNK) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk


def page_tokens(limits: Limits, what: str) -> Callable[[str | None], bool]:
    """A pager's guard: call it with each next-page token; True means fetch it. A repeated
    token or one page too many ends the listing with an error."""
    seen: set[str] = set()
    pages = [0]

    def next_page(token: str | None) -> bool:
        pages[0] += 1
        if not token:
            return False
        if token in seen:
            raise TerminalError(f"{what}: the next-page token repeated; the listing would loop")
        if pages[0] >= limits.max_pages:
            raise limits.exceeded(f"{what}: more than {limits.max_pages} pages", "max_pages")
        seen.add(token)
        return True

    return next_page

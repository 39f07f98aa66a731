"""The egress decision over a table of hostile spellings, and the allowed cases.

No name here is ever looked up in DNS: the resolver is a table, and a test that would need
a real lookup fails instead (`_no_dns`). Nothing here connects anywhere except loopback.
"""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from pipeline_ops_core.egress import (
    ALLOW_ENV,
    EgressClient,
    EgressPolicy,
    EgressRefused,
    LimitExceeded,
    Limits,
    Vetted,
    address_problem,
    inflate,
    normalize_host,
    page_tokens,
    parse_allow_list,
    split_url,
    spool,
)

# name -> the addresses a hostile DNS would answer
DNS = {
    "api.openai.com": ["162.159.140.245"],
    "hooks.example.com": ["93.184.216.34"],
    "rebind.example.com": ["93.184.216.34", "10.0.0.7"],  # one public, one private answer
    "loopback.example.com": ["127.0.0.1"],
    "v6meta.example.com": ["fd00:ec2::254"],
    "mapped.example.com": ["::ffff:169.254.169.254"],
}


def _resolver(host: str, port: Any, **_: Any) -> list[tuple[Any, ...]]:
    if host not in DNS:
        raise AssertionError(f"the policy tried to resolve {host!r}; it must refuse it first")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in DNS[host]]


def vet_url(policy: EgressPolicy, url: str, where: str, hosts: Any = None) -> Vetted:
    """The full decision for a URL, as a caller makes it: split it, then vet the parts."""
    scheme, host, port = split_url(url, where)
    return policy.vet(scheme, host, port, where, hosts)


def strict(allow: str = "") -> EgressPolicy:
    return EgressPolicy(parse_allow_list(allow), resolver=_resolver)


HOSTILE = [
    # (url, what the refusal says)
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/latest/", "metadata"),
    ("https://metadata.google.internal/computeMetadata/v1/", "internal host name"),
    ("https://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/", "internal host name"),
    ("https://metadata/computeMetadata/v1/", "internal host name"),
    ("https://127.0.0.1:6379/", "loopback"),
    ("https://localhost:6379/", "internal host name"),
    ("https://LocalHost./", "internal host name"),
    # full-width letters: IDNA maps them to "localhost"
    ("https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", "internal host name"),
    ("https://127。0。0。1/", "loopback"),  # ideographic full stops
    ("https://[::1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:7f00:1]/", "loopback"),
    ("https://[::127.0.0.1]/", "loopback"),
    ("https://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("https://[2002:a9fe:a9fe::]/", "metadata"),  # 6to4 of 169.254.169.254
    ("https://[2002:c0a8:0101::1]/", "private"),  # 6to4 of 192.168.1.1
    ("https://0x7f000001/", "loopback"),
    ("https://2130706433/", "loopback"),
    ("https://017700000001/", "loopback"),
    ("https://0177.0.0.1/", "loopback"),
    ("https://127.1/", "loopback"),
    ("https://0x7f.1/", "loopback"),
    ("https://10.1.2.3/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://192.168.0.1/", "private"),
    ("https://[fc00::1]/", "private"),
    ("https://[fe80::1]/", "link-local"),
    ("https://169.254.1.1/", "link-local"),
    ("https://100.64.0.1/", "CGNAT"),
    ("https://100.100.100.200/", "metadata"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://224.0.0.1/", "multicast"),
    ("https://240.0.0.1/", "private"),
    ("https://redis/", "single-label"),
    ("https://db.local/", "internal host name"),
    ("https://loopback.example.com/", "loopback"),
    ("https://rebind.example.com/", "private"),  # EVERY answer is checked
    ("https://v6meta.example.com/", "metadata"),
    ("https://mapped.example.com/", "metadata"),
    ("http://hooks.example.com/", "https"),
    ("https://user:pw@hooks.example.com/", "user name"),
    ("https://hooks.example.com\\@127.0.0.1/", "backslash"),
    ("https://127.0.0.1\x00.example.com/", "spaces or backslashes"),
    ("https://[fe80::1%25eth0]/", "not a valid host"),
    ("https://hooks.example.com:0/", "port"),
    ("https://hooks.example.com:99999/", "port"),
    ("file:///etc/passwd", "http(s) URL"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "http(s) URL"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
def test_hostile_destinations_are_refused(url: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        vet_url(strict(), url, "the webhook URL")
    message = str(refused.value)
    assert message.startswith("the webhook URL"), message
    assert reason in message, message


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/",
        "http://169.254.169.254/latest/",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:169.254.169.254]/",
    ],
)
def test_metadata_addresses_are_refused_even_when_allow_listed(url: str) -> None:
    with pytest.raises(EgressRefused, match="metadata"):
        vet_url(strict("* 169.254.169.254:* [fd00:ec2::254]:*"), url, "field base_url")


def test_known_provider_hosts_only_for_a_provider_field() -> None:
    hosts = ("api.openai.com",)
    vetted = vet_url(strict(), "https://api.openai.com/v1", "field base_url", hosts)
    assert vetted.addresses == ("162.159.140.245",) and not vetted.allow_listed
    with pytest.raises(EgressRefused, match=r"not a known endpoint.*api\.openai\.com"):
        vet_url(strict(), "https://hooks.example.com/v1", "field base_url", hosts)
    with pytest.raises(EgressRefused, match="https"):
        vet_url(strict(), "http://api.openai.com/v1", "field base_url", hosts)


def test_a_token_uri_must_be_googles_unless_allow_listed() -> None:
    google = ("oauth2.googleapis.com", "accounts.google.com", "www.googleapis.com")
    policy = strict()
    assert policy.check_url("https://oauth2.googleapis.com/token", "token_uri", google)
    with pytest.raises(EgressRefused, match="not a known endpoint"):
        policy.check_url("https://oauth2.googleapis.com.evil.example/token", "token_uri", google)
    listed = strict("token.corp.example:8443")
    assert listed.check_url("https://token.corp.example:8443/token", "token_uri", google)
    with pytest.raises(EgressRefused, match="not a known endpoint"):
        listed.check_url("https://token.corp.example/token", "token_uri", google)  # port 443


def test_allow_listed_hosts_may_be_http_and_private() -> None:
    policy = strict("127.0.0.1:* *.corp.example:443 [::1]:8080")
    assert vet_url(policy, "http://127.0.0.1:6379/", "f").addresses == ("127.0.0.1",)
    # Another spelling of an allow-listed address is the same address.
    assert vet_url(policy, "http://2130706433:80/", "f").host == "127.0.0.1"
    assert vet_url(policy, "http://[::1]:8080/", "f").allow_listed
    with pytest.raises(EgressRefused):
        vet_url(policy, "http://[::1]:8081/", "f")
    assert policy.check_url("https://api.corp.example/", "f")
    with pytest.raises(EgressRefused, match="https"):
        policy.check_url("http://api.corp.example:8080/", "f")


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "https://HOOKS.example.com./x", "https://93.184.216.34/"]
)
def test_public_destinations_pass(url: str) -> None:
    assert vet_url(strict(), url, "the webhook URL").addresses == ("93.184.216.34",)


def test_host_normalization() -> None:
    assert normalize_host("[::FFFF:7F00:1]", "f") == "::ffff:7f00:1"
    assert normalize_host("0x7f000001", "f") == "127.0.0.1"
    assert normalize_host("Bücher.example.", "f") == "xn--bcher-kva.example"


def test_address_problem_table() -> None:
    import ipaddress

    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1")) is None
    assert address_problem(ipaddress.ip_address("::ffff:8.8.8.8")) is None
    assert "Teredo" in str(address_problem(ipaddress.ip_address("2001:0:4136:e378::1")))


def test_allow_list_parsing() -> None:
    patterns = parse_allow_list("127.0.0.1:*, *.corp.example:443 [::1]:9000 Host.Example")
    assert [(p.host, p.port) for p in patterns] == [
        ("127.0.0.1", None),
        ("*.corp.example", 443),
        ("::1", 9000),
        ("host.example", None),
    ]
    with pytest.raises(ValueError, match=ALLOW_ENV):
        parse_allow_list("host:http")


def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and stop) every connect this thread makes: a test that would send a packet
    fails instead. Other threads (e.g. an earlier test app's metrics flusher) connect as
    usual: the SDK calls under test run in this thread, as the guard itself is per thread."""
    calls: list[object] = []
    me = threading.get_ident()
    originals = {
        "connect": socket.socket.connect,
        "connect_ex": socket.socket.connect_ex,
        "create_connection": socket.create_connection,
    }

    def spy(name: str) -> Callable[..., object]:
        def refuse(*args: object, **kwargs: object) -> object:
            if threading.get_ident() != me:
                return originals[name](*args, **kwargs)  # type: ignore[operator]
            calls.append(args)
            raise AssertionError(f"a connection was attempted: {args!r}")

        return refuse

    monkeypatch.setattr(socket.socket, "connect", spy("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", spy("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", spy("create_connection"))
    return calls


def test_a_refused_host_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client decides before any socket: none is created for refused destinations."""
    calls = no_connections(monkeypatch)
    for url, _ in HOSTILE:
        if url.startswith("https://") and "example.com" not in url:
            with (
                EgressClient("the webhook URL", egress=strict()) as client,
                pytest.raises(EgressRefused),
            ):
                client.get(url)
    assert calls == []


# -- caps ----------------------------------------------------------------------------------------


def test_inflate_stops_at_the_ratio_cap_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # ~64 KiB that inflates to 64 MiB
    limits = Limits(max_inflate_ratio=50)
    given = 0
    with pytest.raises(LimitExceeded, match="PIPELINE_OPS_MAX_INFLATE_RATIO") as err:
        for piece in inflate([bomb[i : i + 4096] for i in range(0, len(bomb), 4096)], limits, "x"):
            given += len(piece)
    assert given < 20 * 1024 * 1024  # stopped shortly after the 16 MiB floor
    assert "decompression ratio" in str(err.value)


def test_inflate_size_cap_and_multi_member_gzip() -> None:
    two = gzip.compress(b"a,b\n") + gzip.compress(b"1,2\n")
    assert b"".join(inflate([two], Limits(), "x")) == b"a,b\n1,2\n"
    with pytest.raises(LimitExceeded, match="PIPELINE_OPS_MAX_INFLATED_BYTES"):
        list(inflate([gzip.compress(b"x" * 5000)], Limits(max_inflated_bytes=4096), "x"))
    with pytest.raises((EOFError, zlib.error)):
        list(inflate([gzip.compress(b"x" * 5000)[:-20]], Limits(), "x"))


def test_spool_caps_the_object_size() -> None:
    limits = Limits(max_object_bytes=10, spool_bytes=4)
    assert spool([b"12345", b"67890"], limits, "obj").read() == b"1234567890"
    with pytest.raises(LimitExceeded, match="PIPELINE_OPS_MAX_OBJECT_BYTES"):
        spool([b"12345", b"678901"], limits, "obj")
    with pytest.raises(LimitExceeded, match=r"obj \(11 bytes\)"):
        spool(iter(()), limits, "obj", size=11)


def test_page_guard_stops_a_repeated_token_and_too_many_pages() -> None:
    next_page = page_tokens(Limits(), "listing")
    assert next_page("a") and next_page("b") and not next_page(None)
    again = page_tokens(Limits(), "listing")
    again("a")
    with pytest.raises(Exception, match="repeated"):
        again("a")
    few = page_tokens(Limits(max_pages=2), "listing")
    few("a")
    with pytest.raises(LimitExceeded, match="PIPELINE_OPS_MAX_PAGES"):
        few("b")


def test_limits_from_env() -> None:
    limits = Limits.from_env(
        {"PIPELINE_OPS_HTTP_DEADLINE_SECONDS": "5", "PIPELINE_OPS_MAX_PAGES": "7"}
    )
    assert limits.http_deadline_seconds == 5.0 and limits.max_pages == 7
    with pytest.raises(ValueError, match="PIPELINE_OPS_MAX_OBJECT_BYTES"):
        Limits.from_env({"PIPELINE_OPS_MAX_OBJECT_BYTES": "-1"})


def test_a_trickling_answer_ends_at_the_total_deadline() -> None:
    """httpx's timeout is per read: one byte every 0.2 s never trips it. The deadline does."""
    from tests.support.hostile import TrickleServer

    server = TrickleServer(interval=0.2, seconds=30)
    try:
        limits = Limits(http_deadline_seconds=1.0)
        client = EgressClient("credential base_url", None, limits=limits, timeout=5.0)
        with client, pytest.raises(LimitExceeded, match="PIPELINE_OPS_HTTP_DEADLINE_SECONDS"):
            client.get(server.url + "/usage")
        assert server.started
    finally:
        server.close()


def test_the_sdks_are_refused_metadata_and_private_hosts_before_any_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boto3 and google-auth inside the step's guard: the decision comes before a connect."""
    import boto3
    import google.auth.transport.requests
    from botocore.config import Config

    from processors.sdk_egress import guarded, refusal_in
    from tests.support.gcp_catalog_server import service_account_key
    from warehouse.bigquery.client import service_account_credentials

    monkeypatch.setenv(ALLOW_ENV, "")
    calls = no_connections(monkeypatch)
    s3 = boto3.client(
        "s3", endpoint_url="http://169.254.169.254", region_name="us-east-1",
        aws_access_key_id="AKIAX", aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    with pytest.raises(Exception) as caught, guarded("credential endpoint_url", ("*.aws",)):
        s3.get_object(Bucket="b", Key="k")
    assert "metadata" in str(refusal_in(caught.value))
    key = service_account_key(
        "http://metadata.google.internal/token", client_email="a@b.iam.gserviceaccount.com"
    )
    with pytest.raises(EgressRefused, match="internal host name"), guarded("token_uri", None):
        service_account_credentials(key).refresh(google.auth.transport.requests.Request())
    with pytest.raises(Exception) as caught, guarded("credential endpoint_url", None):
        s3_private = boto3.client(
            "s3", endpoint_url="https://10.0.0.8", region_name="us-east-1",
            aws_access_key_id="AKIAX", aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}),
        )  # fmt: skip
        s3_private.get_object(Bucket="b", Key="k")
    assert "private" in str(refusal_in(caught.value))
    assert calls == []

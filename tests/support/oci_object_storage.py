"""A loopback server speaking the two OCI Object Storage REST calls the OCI processor uses.

    GET /n/{namespaceName}/b/{bucketName}/o?prefix=&start=&end=&limit=&fields=   (ListObjects)
    GET /n/{namespaceName}/b/{bucketName}/o/{objectName}                          (GetObject)

Why not moto's S3-compatible endpoint: the issue asks for the `oci` SDK, and the SDK's own
request signing (draft-cavage HTTP signatures with the user's API key) is the part most
likely to be wrong in a real tenancy; the S3-compat path would bypass both. So this server
verifies every request's signature against the public key registered for its keyId
(`<tenancy>/<user>/<fingerprint>`) and answers like OCI does:

- missing, malformed or wrong signature, unknown key, Date off by > 5 min → 401 NotAuthenticated;
- a bucket that does not exist, or one the user has no grant on → 404 BucketNotFound with OCI's
  own wording, which deliberately does not say which of the two it is;
- an unknown namespace → 404 NamespaceNotFound; a missing object → 404 ObjectNotFound.

Listing pages at `page_limit` objects (OCI's limit is 1000) so paging is exercised, and every
request is recorded (`requests`) for assertions. `fail()` queues faults (429/5xx) that answer
the next authenticated requests (optionally only those for one object) first.
"""

from __future__ import annotations

import base64
import csv
import email.utils
import gzip
import hashlib
import io
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.servers import LoopbackHTTPServer

NOT_AUTHENTICATED = (
    "The required information to complete authentication was not provided or was incorrect."
)
SIGNED_HEADERS = ("date", "(request-target)", "host")
CLOCK_SKEW_SECONDS = 300

_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
_PATH_RE = re.compile(r"^/n/(?P<ns>[^/]+)/b/(?P<bucket>[^/]+)/o(?:/(?P<object>.+))?$")


@dataclass(frozen=True)
class ApiKey:
    """One OCI API signing key: what a credential holds, and what the server registers."""

    tenancy: str
    user: str
    private_pem: str
    fingerprint: str
    public_key: rsa.RSAPublicKey

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """OCI's key fingerprint: MD5 of the DER SubjectPublicKeyInfo, colon-separated hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def make_api_key(tenancy: str, user: str, *, pass_phrase: str | None = None) -> ApiKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(pass_phrase.encode())
        if pass_phrase
        else serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()
    public = private.public_key()
    return ApiKey(tenancy, user, pem, fingerprint(public), public)


@dataclass
class StoredObject:
    data: bytes
    time_created: datetime
    content_type: str = "application/octet-stream"

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


@dataclass
class RecordedRequest:
    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    user: str | None
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class OciObjectStorageServer(LoopbackHTTPServer):
    def __init__(self, *, page_limit: int = 2) -> None:
        self.page_limit = page_limit
        self.keys: dict[str, rsa.RSAPublicKey] = {}
        self.buckets: dict[tuple[str, str], dict[str, StoredObject]] = {}
        self.grants: dict[str, set[tuple[str, str]]] = {}
        self.faults: list[tuple[int, str, str, str]] = []
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers, body = outer._answer("GET", self.path, dict(self.headers))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        super().__init__(Handler)

    # -- setup ---------------------------------------------------------------------------

    def register_key(self, key: ApiKey) -> None:
        with self.lock:
            self.keys[key.key_id] = key.public_key

    def create_bucket(self, namespace: str, bucket: str) -> None:
        with self.lock:
            self.buckets.setdefault((namespace, bucket), {})

    def grant(self, user: str, namespace: str, bucket: str) -> None:
        """What the cross-tenancy `endorse ... to read objects` policy gives a user's group."""
        with self.lock:
            self.grants.setdefault(user, set()).add((namespace, bucket))

    def put_object(
        self,
        namespace: str,
        bucket: str,
        name: str,
        data: bytes,
        *,
        time_created: datetime | None = None,
    ) -> None:
        with self.lock:
            objects = self.buckets.setdefault((namespace, bucket), {})
            objects[name] = StoredObject(data, time_created or datetime.now(UTC))

    def fail(
        self, status: int, code: str, message: str = "", *, times: int = 1, path: str = ""
    ) -> None:
        """Answer the next `times` authenticated requests whose decoded path contains `path`."""
        with self.lock:
            self.faults.extend([(status, code, message or f"HTTP {status}", path)] * times)

    # -- queries for assertions ----------------------------------------------------------

    def list_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/o")]

    def get_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.path.endswith("/o")]

    # -- request handling ----------------------------------------------------------------

    def _answer(
        self, method: str, raw_path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        lowered = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            user = self._authenticate(method, raw_path, lowered)
            if user is None:
                status, out_headers, body = _error(401, "NotAuthenticated", NOT_AUTHENTICATED)
            elif fault := self._take_fault(unquote(parts.path)):
                status, out_headers, body = _error(*fault)
            else:
                status, out_headers, body = self._route(user, parts.path, query)
            self.requests.append(
                RecordedRequest(method, raw_path, unquote(parts.path), query, user, status, lowered)
            )
        return status, out_headers, body

    def _take_fault(self, path: str) -> tuple[int, str, str] | None:
        for i, (status, code, message, match) in enumerate(self.faults):
            if match in path:
                del self.faults[i]
                return status, code, message
        return None

    def _authenticate(self, method: str, raw_path: str, headers: dict[str, str]) -> str | None:
        """The user OCID of a correctly signed request, else None."""
        auth = headers.get("authorization", "")
        if not auth.startswith("Signature "):
            return None
        params = dict(_PARAM_RE.findall(auth))
        if params.get("version") != "1" or params.get("algorithm") != "rsa-sha256":
            return None
        signed = params.get("headers", "").split()
        if not set(SIGNED_HEADERS) <= set(signed):
            return None
        public_key = self.keys.get(params.get("keyId", ""))
        if public_key is None:
            return None
        lines = []
        for name in signed:
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {raw_path}")
            elif name in headers:
                lines.append(f"{name}: {headers[name]}")
            else:
                return None
        try:
            signature = base64.b64decode(params.get("signature", ""), validate=True)
            public_key.verify(
                signature, "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            sent = email.utils.parsedate_to_datetime(headers["date"])
        except (InvalidSignature, ValueError, TypeError):
            return None
        if abs((datetime.now(UTC) - sent).total_seconds()) > CLOCK_SKEW_SECONDS:
            return None
        return params["keyId"].split("/")[1]

    def _route(
        self, user: str, path: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        match = _PATH_RE.match(path)
        if match is None:
            return _error(404, "NotFound", f"no route for {path}")
        namespace, bucket = unquote(match["ns"]), unquote(match["bucket"])
        if not any(ns == namespace for ns, _ in self.buckets):
            return _error(
                404,
                "NamespaceNotFound",
                f"Either the namespace '{namespace}' does not exist or you are not authorized "
                "to access it",
            )
        objects = self.buckets.get((namespace, bucket))
        if objects is None or (namespace, bucket) not in self.grants.get(user, set()):
            return _error(
                404,
                "BucketNotFound",
                f"Either the bucket named '{bucket}' does not exist in the namespace "
                f"'{namespace}' or you are not authorized to access it",
            )
        if match["object"] is None:
            return self._list(objects, query)
        name = unquote(match["object"])
        stored = objects.get(name)
        if stored is None:
            return _error(
                404,
                "ObjectNotFound",
                f"The object '{name}' was not found in the bucket '{bucket}'",
            )
        return (
            200,
            {
                "Content-Type": stored.content_type,
                "ETag": stored.etag,
                "Last-Modified": email.utils.format_datetime(stored.time_created, usegmt=True),
                "opc-request-id": _request_id(),
            },
            stored.data,
        )

    def _list(
        self, objects: dict[str, StoredObject], query: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        prefix, start, end = query.get("prefix", ""), query.get("start"), query.get("end")
        limit = min(int(query.get("limit", self.page_limit)), self.page_limit)
        fields = {f.strip() for f in query.get("fields", "name").split(",")}
        names = sorted(
            n
            for n in objects
            if n.startswith(prefix)
            and (start is None or n >= start)  # start is inclusive
            and (end is None or n < end)  # end is exclusive
        )
        page, rest = names[:limit], names[limit:]
        listed: list[dict[str, Any]] = []
        for name in page:
            item: dict[str, Any] = {"name": name}
            if "size" in fields:
                item["size"] = len(objects[name].data)
            if "timeCreated" in fields:
                item["timeCreated"] = (
                    objects[name]
                    .time_created.isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z")
                )
            if "etag" in fields:
                item["etag"] = objects[name].etag
            listed.append(item)
        body: dict[str, Any] = {"objects": listed, "prefixes": []}
        if rest:
            body["nextStartWith"] = rest[0]
        return 200, _json_headers(), json.dumps(body).encode()


def _request_id() -> str:
    return hashlib.sha1(str(datetime.now(UTC)).encode(), usedforsecurity=False).hexdigest()[:32]


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "opc-request-id": _request_id()}


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, _json_headers(), json.dumps({"code": code, "message": message}).encode()


# -- OCI FOCUS report files ----------------------------------------------------------------

# The columns of an OCI FOCUS report, in the order Oracle's public loaders read them: FOCUS
# 1.0 names, some 1.0-preview names (Provider, Publisher, InvoiceIssuer, Region,
# UsageQuantity, UsageUnit, ChargeSubcategory) and the oci_* extensions.
REPORT_COLUMNS = [
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ChargeSubcategory",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountType",
    "EffectiveCost",
    "InvoiceIssuer",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "Provider",
    "Publisher",
    "Region",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "UsageQuantity",
    "UsageUnit",
    "oci_ReferenceNumber",
    "oci_CompartmentId",
    "oci_CompartmentName",
    "oci_OverageFlag",
    "oci_UnitPriceOverage",
    "oci_BilledQuantityOverage",
    "oci_CostOverage",
    "oci_AttributedUsage",
    "oci_AttributedCost",
    "oci_BackReferenceNumber",
]


def report_csv_gz(rows: list[dict[str, str]]) -> bytes:
    """A gzipped CSV report; columns not in a row are empty, as in Oracle's files."""
    unknown = {key for row in rows for key in row} - set(REPORT_COLUMNS)
    if unknown:
        raise ValueError(f"not report columns: {sorted(unknown)}")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return gzip.compress(out.getvalue().encode())

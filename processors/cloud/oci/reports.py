"""OCI FOCUS cost reports: credential, folder range, error mapping, de-duplication (no I/O).

Oracle writes the reports as gzipped CSV, roughly every 6 hours, into its own tenancy:
namespace `bling`, bucket = the customer's tenancy OCID, objects
`FOCUS Reports/<yyyy>/<mm>/<dd>/<file>.csv.gz`. The folder is the day the file was written,
not the day of the charges in it, so a day's charges can land in a later day's folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import oci
import pyarrow as pa

from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError

REPORTS_NAMESPACE = "bling"
REPORTS_ROOT = "FOCUS Reports/"
DEFAULT_LOOKAHEAD_DAYS = 3
MAX_LOOKAHEAD_DAYS = 31
REQUIRED_FIELDS = ("user", "fingerprint", "tenancy", "region", "key_content")
OPTIONAL_FIELDS = ("pass_phrase", "service_endpoint", "namespace", "bucket")
# The cross-tenancy policy a customer needs (Oracle's usage-report tenancy), for error text.
ENDORSE_POLICY = (
    "define tenancy usage-report as "
    "ocid1.tenancy.oc1..aaaaaaaaned4fkpkisbwjlr56u7cj63lf3wffbilvqknstgtvzub7vhqkggq; "
    "endorse group <group> to read objects in tenancy usage-report"
)
REPORT_SUFFIXES = (".csv.gz", ".csv")

_FOLDER_RE = re.compile(r"^FOCUS Reports/(\d{4})/(\d{2})/(\d{2})/[^/]+$")


@dataclass(frozen=True)
class ReportLocation:
    namespace: str
    bucket: str

    def describe(self) -> str:
        return f"namespace '{self.namespace}', bucket '{self.bucket}'"


def sdk_config(credential: Mapping[str, Any]) -> dict[str, Any]:
    """The `oci` SDK config dict for an API-key credential, validated by the SDK's own rules.

    Errors name fields only: InvalidConfig carries {field: "missing"|"malformed"}, never values.
    """
    problems = {
        key: "not a string"
        for key in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)
        if credential.get(key) is not None and not isinstance(credential.get(key), str)
    }
    if problems:
        raise TerminalError(f"OCI credential is invalid: {_describe(problems)}")
    config: dict[str, Any] = {
        "user": credential.get("user"),
        "fingerprint": credential.get("fingerprint"),
        "tenancy": credential.get("tenancy"),
        "region": credential.get("region"),
        "key_content": credential.get("key_content") or None,
        "pass_phrase": credential.get("pass_phrase") or None,
    }
    # An explicit region is required: validate_config would otherwise read OCI_REGION from
    # the worker's environment, which is no part of the org's credential.
    if not config["region"]:
        raise TerminalError("OCI credential is invalid: region missing")
    try:
        oci.config.validate_config(config)
    except oci.exceptions.InvalidConfig as exc:
        # The SDK calls the key field key_file (key_content is its fallback); ours is key_content.
        named = {("key_content" if k == "key_file" else k): v for k, v in exc.errors.items()}
        raise TerminalError(f"OCI credential is invalid: {_describe(named)}") from None
    endpoint = credential.get("service_endpoint")
    if endpoint and not re.match(r"^https?://[^/\s@]+/?$", endpoint):
        raise TerminalError(
            "OCI credential is invalid: service_endpoint must be an http(s)://host[:port] URL"
        )
    return config


def _describe(errors: Mapping[str, str]) -> str:
    return ", ".join(f"{key} {problem}" for key, problem in sorted(errors.items()))


def report_location(
    credential: Mapping[str, Any], step_config: Mapping[str, Any]
) -> ReportLocation:
    """Where the reports live: step config, then credential, then Oracle's defaults."""
    namespace = step_config.get("namespace") or credential.get("namespace") or REPORTS_NAMESPACE
    bucket = step_config.get("bucket") or credential.get("bucket") or credential.get("tenancy")
    return ReportLocation(str(namespace), str(bucket))


def lookahead_days(step_config: Mapping[str, Any]) -> int:
    value = step_config.get("lookahead_days", DEFAULT_LOOKAHEAD_DAYS)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TerminalError(f"lookahead_days must be a whole number of days, got {value!r}")
    if not 0 <= value <= MAX_LOOKAHEAD_DAYS:
        raise TerminalError(f"lookahead_days must be 0..{MAX_LOOKAHEAD_DAYS}, got {value}")
    return value


def day_folder(day: date) -> str:
    return f"{REPORTS_ROOT}{day.year:04d}/{day.month:02d}/{day.day:02d}/"


@dataclass(frozen=True)
class FolderRange:
    """Day folders [first, last]: the run's days plus the lookahead for late files."""

    first: date
    last: date

    @classmethod
    def for_run(cls, start: date, end: date, lookahead: int) -> FolderRange:
        return cls(start, end + timedelta(days=lookahead))

    @property
    def list_start(self) -> str:
        """ListObjects `start` (inclusive): the first folder's prefix."""
        return day_folder(self.first)

    @property
    def list_end(self) -> str:
        """ListObjects `end` (exclusive): the folder after the last, so the last is whole."""
        return day_folder(self.last + timedelta(days=1))

    def describe(self) -> str:
        return f"'{day_folder(self.first)}' .. '{day_folder(self.last)}'"

    def holds(self, name: str) -> bool:
        """Is `name` a report file in one of the range's day folders?"""
        folder = folder_date(name)
        return (
            folder is not None
            and self.first <= folder <= self.last
            and name.lower().endswith(REPORT_SUFFIXES)
        )


def folder_date(name: str) -> date | None:
    match = _FOLDER_RE.match(name)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


# -- SDK errors -> our two error roots -------------------------------------------------------

# Object Storage's error codes (docs: API errors), the ones the messages may quote.
KNOWN_CODES = frozenset(
    {
        "BucketNotFound", "NamespaceNotFound", "ObjectNotFound", "NotAuthenticated",
        "NotAuthorizedOrNotFound", "NotAuthorized", "Forbidden", "TooManyRequests",
        "InternalServerError", "ServiceUnavailable", "InvalidParameter", "MissingParameter",
        "RelatedResourceNotAuthorizedOrNotFound", "InsufficientServicePermissions",
    }
)  # fmt: skip


def map_service_error(
    exc: oci.exceptions.ServiceError, where: ReportLocation, *, object_name: str | None = None
) -> PipelineOpsError:
    """Turn an Object Storage error answer into TerminalError / TransientError.

    Messages name the namespace, bucket and object and quote OCI's code, never the request's
    headers (they carry the signature) or the key. Only codes of OCI's documented vocabulary
    are quoted: anything else an endpoint says stays out of tenant-visible text.
    """
    status, code = int(exc.status or 0), str(exc.code or "")
    code = code if code in KNOWN_CODES else ""
    if status == 401:
        return TerminalError(
            f"OCI Object Storage rejected the API key for {where.describe()} (401 {code}): "
            "check the credential's user, tenancy and fingerprint, and that key_content is the "
            "private key whose public key is uploaded to that user"
        )
    if status == 404 and code in ("BucketNotFound", "NamespaceNotFound"):
        return TerminalError(
            f"OCI Object Storage {where.describe()}: {code}. OCI answers this both when the "
            "bucket or namespace does not exist and when the user is not authorized to read it: "
            "check that the bucket is your tenancy OCID and the namespace is 'bling', and that "
            f"the API key's user is in a group with the cross-tenancy policy ({ENDORSE_POLICY})"
        )
    if status == 404 and object_name is not None:
        return TerminalError(
            f"OCI report object '{object_name}' in {where.describe()}: {code or 'not found'} "
            "(listed, then gone; re-run the step)"
        )
    what = f"object '{object_name}' in " if object_name else ""
    if status == 429 or status >= 500:
        return TransientError(
            f"OCI Object Storage {what}{where.describe()} answered {status} {code}; "
            "try again later",
            retry_after=_retry_after(exc.headers),
        )
    return TerminalError(f"OCI Object Storage {what}{where.describe()}: {status} {code}")


def map_request_error(exc: Exception, endpoint: str) -> TransientError:
    """Connection failures and timeouts: the service may be back on the next attempt."""
    return TransientError(
        f"cannot reach OCI Object Storage at {endpoint} ({type(exc).__name__}); try again later"
    )


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# -- re-delivered files --------------------------------------------------------------------

DEDUPE_COLUMNS = (
    "charge_period_start",
    "charge_period_end",
    "billed_cost",
    "effective_cost",
    "list_cost",
)


def reference_numbers(extensions: pa.ChunkedArray) -> list[str | None]:
    """oci_ReferenceNumber of each row, from the x_extensions JSON (any key case)."""
    out: list[str | None] = []
    for text in extensions.to_pylist():
        found = None
        if text:
            for key, value in json.loads(text).items():
                if key.lower() == "oci_referencenumber":
                    found = None if value in (None, "") else str(value)
                    break
        out.append(found)
    return out


def drop_redelivered(rows: pa.Table) -> tuple[pa.Table, int]:
    """Drop repeats of a line item already seen in an earlier file; return (rows, dropped).

    The reports are incremental, so a line item appears once unless Oracle re-delivers a
    file. A repeat has the same oci_ReferenceNumber, charge period and costs; the first
    occurrence (files are read oldest first) is kept. Rows with the same reference number
    but different costs are both kept: that is a change, not a copy, and dropping it would
    lose money. Rows without a reference number cannot be matched and are all kept.
    """
    if rows.num_rows == 0:
        return rows, 0
    refs = reference_numbers(rows.column("x_extensions"))
    others = [rows.column(name).to_pylist() for name in DEDUPE_COLUMNS]
    seen: set[tuple[Any, ...]] = set()
    keep: list[bool] = []
    for i, ref in enumerate(refs):
        if ref is None:
            keep.append(True)
            continue
        key = (ref, *(column[i] for column in others))
        keep.append(key not in seen)
        seen.add(key)
    dropped = keep.count(False)
    return (rows.filter(pa.array(keep)) if dropped else rows), dropped

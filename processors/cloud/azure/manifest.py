"""Azure Cost Management export layout and manifest.json: pure logic, no SDK.

An export delivers, per run, `<rootFolderPath>/<exportName>/<YYYYMMDD-YYYYMMDD>/<runId>/`
with data files and a manifest.json that lists them (written last: the run's commit point).
Azure refreshes month-to-date daily and regenerates the whole prior month during the first
five days of the next one; with dataOverwriteBehavior=CreateNewReport the superseded runs stay
in the container. So a period is read from exactly ONE run: the manifest with the latest
runInfo.submittedTime. Reading two runs of one period would double the bill.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pipeline_ops_core.errors import TerminalError

# Only FOCUS-shaped exports are read: the raw table and sp_focus_azure expect FOCUS columns.
SUPPORTED_TYPE = "FocusCost"
SUPPORTED_DATA_VERSIONS = ("1.0", "1.0r2", "1.2-preview", "1.2")
MANIFEST_SUFFIX = "manifest.json"
_PERIOD_RE = re.compile(r"^(\d{8})-(\d{8})$")


@dataclass(frozen=True)
class PeriodFolder:
    name: str
    start: date
    end: date


@dataclass(frozen=True)
class ExportBlob:
    name: str  # container-relative blob name
    byte_count: int | None
    row_count: int | None


@dataclass(frozen=True)
class Manifest:
    path: str  # container-relative name of the manifest blob
    export_name: str
    export_type: str
    data_version: str
    file_format: str
    run_id: str
    submitted: datetime
    blob_count: int | None
    blobs: tuple[ExportBlob, ...]


def month_bounds(month: date) -> tuple[date, date]:
    last = calendar.monthrange(month.year, month.month)[1]
    return month.replace(day=1), month.replace(day=last)


def parse_period_folder(name: str) -> PeriodFolder | None:
    """`20261001-20261031` -> PeriodFolder; anything else (not a period folder) -> None."""
    match = _PERIOD_RE.match(name.strip("/").rsplit("/", 1)[-1])
    if not match:
        return None
    try:
        start = datetime.strptime(match.group(1), "%Y%m%d").date()
        end = datetime.strptime(match.group(2), "%Y%m%d").date()
    except ValueError:
        return None
    if end < start:
        return None
    return PeriodFolder(match.group(0), start, end)


def folder_for_month(names: Iterable[str], month: date) -> PeriodFolder | None:
    """The period folder that covers the whole month; the narrowest if several do.

    A monthly export writes exactly the month (20261001-20261031); a custom-range export may
    write a wider folder, which is only used when no month folder exists.
    """
    first, last = month_bounds(month)
    covering = [
        f
        for f in (parse_period_folder(n) for n in names)
        if f is not None and f.start <= first and f.end >= last
    ]
    if not covering:
        return None
    return min(covering, key=lambda f: ((f.end - f.start).days, f.name))


def _parse_time(value: Any, field: str, path: str) -> datetime:
    text = str(value or "").strip()
    try:
        # Python 3.11 accepts "Z" and Azure's 7 fractional digits; naive values are UTC.
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TerminalError(
            f"manifest '{path}': {field} {text!r} is not an ISO timestamp"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _optional_int(value: Any, field: str, path: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TerminalError(f"manifest '{path}': {field} {value!r} is not a number") from None


def parse_manifest(path: str, data: bytes) -> Manifest:
    """Parse one manifest.json; malformed -> TerminalError naming the manifest."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TerminalError(f"manifest '{path}' is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise TerminalError(f"manifest '{path}' is not a JSON object")
    export = doc.get("exportConfig") or {}
    delivery = doc.get("deliveryConfig") or {}
    run = doc.get("runInfo") or {}
    raw_blobs = doc.get("blobs")
    if not isinstance(export, dict) or not isinstance(run, dict) or not isinstance(delivery, dict):
        raise TerminalError(f"manifest '{path}': exportConfig/deliveryConfig/runInfo not objects")
    if not isinstance(raw_blobs, list):
        raise TerminalError(f"manifest '{path}' has no blobs[] list")
    blobs = []
    for i, item in enumerate(raw_blobs):
        name = item.get("blobName") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip("/"):
            raise TerminalError(f"manifest '{path}': blobs[{i}] has no blobName")
        blobs.append(
            ExportBlob(
                name=name,
                byte_count=_optional_int(item.get("byteCount"), f"blobs[{i}].byteCount", path),
                row_count=_optional_int(item.get("dataRowCount"), f"blobs[{i}].dataRowCount", path),
            )
        )
    return Manifest(
        path=path,
        export_name=str(export.get("exportName") or ""),
        export_type=str(export.get("type") or ""),
        data_version=str(export.get("dataVersion") or ""),
        file_format=str(delivery.get("fileFormat") or ""),
        run_id=str(run.get("runId") or ""),
        submitted=_parse_time(run.get("submittedTime"), "runInfo.submittedTime", path),
        blob_count=_optional_int(doc.get("blobCount"), "blobCount", path),
        blobs=tuple(blobs),
    )


def latest_run(manifests: Iterable[Manifest]) -> Manifest:
    """The run that supersedes the others: latest submittedTime, ties broken by path."""
    return max(manifests, key=lambda m: (m.submitted, m.path))


def check_manifest(manifest: Manifest) -> None:
    """Refuse what this version cannot read correctly, with the reason and the way out."""
    where = f"manifest '{manifest.path}'"
    if manifest.export_type.lower() != SUPPORTED_TYPE.lower():
        raise TerminalError(
            f"{where} is a {manifest.export_type or 'untyped'!s} export; only FocusCost exports "
            f"are read (ActualCost/AmortizedCost are not supported in this version): create a "
            f"Cost Management export of type 'FOCUS cost' and point export_name at it"
        )
    if manifest.data_version not in SUPPORTED_DATA_VERSIONS:
        raise TerminalError(
            f"{where}: FocusCost dataVersion {manifest.data_version!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_DATA_VERSIONS)})"
        )
    if manifest.blob_count is not None and manifest.blob_count != len(manifest.blobs):
        raise TerminalError(
            f"{where} says blobCount {manifest.blob_count} but lists {len(manifest.blobs)} "
            f"blobs: the manifest is incomplete"
        )
    if not manifest.blobs:
        raise TerminalError(f"{where} lists no data files")


def blob_candidates(blob_name: str, container: str) -> list[str]:
    """Container-relative names a manifest blobName may stand for, most likely first.

    Microsoft's samples give container-relative names; some carry a leading slash or the
    container as first segment. The verbatim name is tried first, so a folder that happens
    to be named like the container is not mangled.
    """
    name = blob_name.lstrip("/")
    prefix = f"{container}/"
    out = [name]
    if name.startswith(prefix):
        out.append(name[len(prefix) :])
    return out


def export_prefix(root_folder: str, export_name: str) -> str:
    """`<rootFolderPath>/<exportName>/`, without leading slash; empty root allowed."""
    parts = [p.strip("/") for p in (root_folder, export_name) if p and p.strip("/")]
    return "/".join(parts) + "/" if parts else ""


def connection_string_endpoint(conn: str) -> str | None:
    """The Blob endpoint a storage connection string points the SDK at (never echoed: the
    string holds the key). An explicit BlobEndpoint wins, as in the SDK; else the account
    name and endpoint suffix; the development-storage shortcut is Azurite's address. None
    when it names no endpoint at all (the SDK refuses such a string)."""
    fields: dict[str, str] = {}
    for part in conn.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if fields.get("blobendpoint"):
        return fields["blobendpoint"]
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return "http://127.0.0.1:10000/devstoreaccount1"
    if not fields.get("accountname"):
        return None
    protocol = fields.get("defaultendpointsprotocol") or "https"
    suffix = fields.get("endpointsuffix") or "core.windows.net"
    return f"{protocol}://{fields['accountname']}.blob.{suffix}"

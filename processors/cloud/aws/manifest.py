"""Paths and manifests of an AWS Data Exports delivery to S3 (pure logic, no I/O).

AWS delivers an export under `s3://<bucket>/<prefix>/<export-name>/`:

    data/BILLING_PERIOD=YYYY-MM/[<timestamp>-<executionId>/]<export-name>-00001.snappy.parquet
    metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json

The partition-level manifest is rewritten after every refresh, in both delivery modes
("overwrite" and "create new report", whose data sits in a per-execution sub-folder), and is
written after the data files. Its `dataFiles` list is therefore the one authority on which
files hold the period now: AWS restates closed periods in place, and an overwrite delivery
that shrinks leaves stale chunks behind, so listing data/ would double-count.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pipeline_ops_core.errors import TerminalError

MANIFEST_SUFFIX = "-Manifest.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def billing_period(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def export_root(prefix: str, export_name: str) -> str:
    """The key prefix of the export's folder (the one holding data/ and metadata/)."""
    parts = [p for p in (prefix.strip("/"), export_name.strip("/")) if p]
    return "/".join(parts)


def manifest_key(prefix: str, export_name: str, month: date) -> str:
    root = export_root(prefix, export_name)
    return (
        f"{root}/metadata/BILLING_PERIOD={billing_period(month)}/"
        f"{export_name.strip('/')}{MANIFEST_SUFFIX}"
    )


def parse_manifest(body: bytes, *, bucket: str, manifest_uri: str) -> list[str]:
    """The object keys of the manifest's current data files, in manifest order.

    AWS does not publish a schema for the manifest, so the parser is liberal about the
    entries: s3:// URIs, bucket-relative keys, or objects carrying `s3Uri` or `key`.
    """
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TerminalError(f"manifest {manifest_uri} is not valid JSON ({exc})") from None
    files = doc.get("dataFiles") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise TerminalError(f"manifest {manifest_uri} has no dataFiles list")
    keys: list[str] = []
    for entry in files:
        key = data_file_key(entry, bucket=bucket, manifest_uri=manifest_uri)
        if key not in keys:
            keys.append(key)
    return keys


def data_file_key(entry: Any, *, bucket: str, manifest_uri: str) -> str:
    uri = entry
    if isinstance(entry, dict):
        uri = entry.get("s3Uri") or entry.get("key")
    if not isinstance(uri, str) or not uri.strip():
        raise TerminalError(
            f"manifest {manifest_uri} has a dataFiles entry without a path: {entry!r}"
        )
    uri = uri.strip()
    if uri.startswith("s3://"):
        entry_bucket, _, key = uri[len("s3://") :].partition("/")
        if not key:
            raise TerminalError(f"manifest {manifest_uri} lists {uri!r}, which has no object key")
        if entry_bucket != bucket:
            # The credential grants one bucket; following a manifest elsewhere would read
            # data the org did not point us at.
            raise TerminalError(f"manifest {manifest_uri} lists {uri}, outside bucket '{bucket}'")
        return key
    if "://" in uri:
        raise TerminalError(f"manifest {manifest_uri} lists {uri!r}, which is not an S3 path")
    return uri.lstrip("/")

"""Azure export layout and manifest.json: period folders, the latest run, what is refused."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipeline_ops_core.errors import TerminalError
from processors.cloud.azure.manifest import (
    Manifest,
    blob_candidates,
    check_manifest,
    export_prefix,
    folder_for_month,
    latest_run,
    month_bounds,
    parse_manifest,
    parse_period_folder,
)

OCT = date(2026, 10, 1)


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "manifestVersion": "2024-04-01",
        "blobCount": 2,
        "byteCount": 300,
        "dataRowCount": 30,
        "exportConfig": {
            "exportName": "daily",
            "dataVersion": "1.2-preview",
            "type": "FocusCost",
            "timeFrame": "MonthToDate",
        },
        "deliveryConfig": {"fileFormat": "Csv", "compressionMode": "gzip"},
        "blobs": [
            {"blobName": "r/daily/20261001-20261031/a/part_0_0001.csv.gz", "byteCount": 100},
            {"blobName": "r/daily/20261001-20261031/a/part_0_0002.csv.gz", "byteCount": 200},
        ],
        "runInfo": {"runId": "a", "submittedTime": "2026-11-03T05:59:01.9013967Z"},
    }
    base.update(over)
    return base


def parsed(path: str = "c/m.json", **over: Any) -> Manifest:
    return parse_manifest(path, json.dumps(doc(**over)).encode())


def test_month_bounds() -> None:
    assert month_bounds(date(2026, 2, 14)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert month_bounds(date(2028, 2, 1)) == (date(2028, 2, 1), date(2028, 2, 29))


def test_period_folders() -> None:
    folder = parse_period_folder("exports/focus/daily/20261001-20261031/")
    assert folder is not None and (folder.start, folder.end) == (OCT, date(2026, 10, 31))
    assert folder.name == "20261001-20261031"
    for name in ("20261031-20261001", "20261301-20261331", "runs/", "2026101-20261031", ""):
        assert parse_period_folder(name) is None


def test_folder_for_month_prefers_the_month_folder() -> None:
    names = ["p/20260101-20261231/", "p/20261001-20261031/", "p/20260901-20260930/", "p/x/"]
    chosen = folder_for_month(names, OCT)
    assert chosen is not None and chosen.name == "20261001-20261031"
    # Only a wider custom-range folder: it is used.
    wide = folder_for_month(["p/20260101-20261231/"], OCT)
    assert wide is not None and wide.name == "20260101-20261231"
    # A folder covering part of the month does not count: rows would be missing.
    assert folder_for_month(["p/20261001-20261015/"], OCT) is None
    assert folder_for_month([], OCT) is None


def test_parse_manifest() -> None:
    m = parsed()
    assert (m.export_name, m.export_type, m.data_version, m.file_format) == (
        "daily",
        "FocusCost",
        "1.2-preview",
        "Csv",
    )
    assert m.submitted == datetime(2026, 11, 3, 5, 59, 1, 901396, tzinfo=UTC)
    assert m.blob_count == 2 and [b.byte_count for b in m.blobs] == [100, 200]
    # Azure also writes zone-less times; they are UTC.
    naive = parsed(runInfo={"runId": "b", "submittedTime": "2026-11-03T05:59:01"})
    assert naive.submitted == datetime(2026, 11, 3, 5, 59, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "manifest 'c/m.json' is not valid JSON"),
        (b"[]", "manifest 'c/m.json' is not a JSON object"),
        (json.dumps(doc(blobs=None)).encode(), "manifest 'c/m.json' has no blobs[] list"),
        (json.dumps(doc(blobs=[{"byteCount": 1}])).encode(), "blobs[0] has no blobName"),
        (
            json.dumps(doc(runInfo={"submittedTime": "yesterday"})).encode(),
            "runInfo.submittedTime 'yesterday' is not an ISO timestamp",
        ),
        (json.dumps(doc(blobCount="two")).encode(), "blobCount 'two' is not a number"),
    ],
)
def test_malformed_manifests(data: bytes, message: str) -> None:
    with pytest.raises(TerminalError) as caught:
        parse_manifest("c/m.json", data)
    assert str(caught.value).startswith("manifest 'c/m.json'") and message in str(caught.value)


def test_latest_run_supersedes_older_runs() -> None:
    older = parsed("c/a/manifest.json", runInfo={"submittedTime": "2026-10-20T06:00:00Z"})
    newer = parsed("c/b/manifest.json", runInfo={"submittedTime": "2026-11-03T06:00:00Z"})
    # By submittedTime, not by name or listing order.
    assert latest_run([newer, older]) is newer
    renamed = parsed("c/z/manifest.json", runInfo={"submittedTime": "2026-10-20T06:00:00Z"})
    assert latest_run([renamed, newer]) is newer
    # A tie is broken by path, so the choice never depends on listing order.
    twin = parsed("c/c/manifest.json", runInfo={"submittedTime": "2026-11-03T06:00:00Z"})
    assert latest_run([twin, newer]) is twin and latest_run([newer, twin]) is twin


@pytest.mark.parametrize("kind", ["ActualCost", "AmortizedCost", "Usage"])
def test_only_focus_cost_exports_are_read(kind: str) -> None:
    config = {**doc()["exportConfig"], "type": kind}
    with pytest.raises(TerminalError) as caught:
        check_manifest(parsed(exportConfig=config))
    assert str(caught.value).startswith(
        f"manifest 'c/m.json' is a {kind} export; only FocusCost exports are read"
    )


@pytest.mark.parametrize("version", ["1.0", "1.0r2", "1.2-preview", "1.2"])
def test_focus_versions_read(version: str) -> None:
    config = {**doc()["exportConfig"], "dataVersion": version, "type": "focuscost"}
    check_manifest(parsed(exportConfig=config))


def test_unknown_focus_version_refused() -> None:
    config = {**doc()["exportConfig"], "dataVersion": "0.5"}
    with pytest.raises(TerminalError, match=r"dataVersion '0.5' is not supported"):
        check_manifest(parsed(exportConfig=config))


def test_blob_count_must_match() -> None:
    with pytest.raises(TerminalError, match="says blobCount 3 but lists 2 blobs"):
        check_manifest(parsed(blobCount=3))
    with pytest.raises(TerminalError, match="lists no data files"):
        check_manifest(parsed(blobCount=0, blobs=[]))
    check_manifest(parsed(blobCount=None))  # older manifests may not count


def test_blob_names_and_prefixes() -> None:
    assert blob_candidates("/r/e/p/part.csv.gz", "costs") == ["r/e/p/part.csv.gz"]
    assert blob_candidates("costs/r/part.csv.gz", "costs") == [
        "costs/r/part.csv.gz",
        "r/part.csv.gz",
    ]
    assert export_prefix("exports/focus/", "/daily/") == "exports/focus/daily/"
    assert export_prefix("", "daily") == "daily/"

"""AWS Data Exports paths and manifest parsing: which keys a billing period's manifest names."""

from __future__ import annotations

import json
from datetime import date

import pytest

from pipeline_ops_core.errors import TerminalError
from processors.cloud.aws.manifest import (
    billing_period,
    export_root,
    manifest_key,
    parse_manifest,
    s3_uri,
)

URI = "s3://billing/cur/focus12/metadata/BILLING_PERIOD=2026-10/focus12-Manifest.json"


def parse(doc: object, bucket: str = "billing") -> list[str]:
    return parse_manifest(json.dumps(doc).encode(), bucket=bucket, manifest_uri=URI)


def test_manifest_key_follows_the_delivery_layout() -> None:
    assert manifest_key("cur", "focus12", date(2026, 10, 1)) == (
        "cur/focus12/metadata/BILLING_PERIOD=2026-10/focus12-Manifest.json"
    )
    # Slashes people paste around the prefix, and an export written at the bucket root.
    assert manifest_key("/a/b/", "/focus12/", date(2026, 1, 1)) == (
        "a/b/focus12/metadata/BILLING_PERIOD=2026-01/focus12-Manifest.json"
    )
    assert manifest_key("", "focus12", date(2026, 12, 1)) == (
        "focus12/metadata/BILLING_PERIOD=2026-12/focus12-Manifest.json"
    )
    assert export_root("", "x") == "x"
    assert billing_period(date(2026, 3, 31)) == "2026-03"
    assert s3_uri("b", "k/l") == "s3://b/k/l"


def test_data_files_as_s3_uris_keys_and_objects_in_manifest_order() -> None:
    keys = parse(
        {
            "dataFiles": [
                "s3://billing/cur/focus12/data/BILLING_PERIOD=2026-10/focus12-00002.snappy.parquet",
                "cur/focus12/data/BILLING_PERIOD=2026-10/focus12-00001.snappy.parquet",
                {"s3Uri": "s3://billing/cur/focus12/data/BILLING_PERIOD=2026-10/c.parquet"},
                {"key": "/cur/focus12/data/BILLING_PERIOD=2026-10/d.parquet"},
                # listed twice: read once
                "s3://billing/cur/focus12/data/BILLING_PERIOD=2026-10/focus12-00002.snappy.parquet",
            ]
        }
    )
    assert keys == [
        "cur/focus12/data/BILLING_PERIOD=2026-10/focus12-00002.snappy.parquet",
        "cur/focus12/data/BILLING_PERIOD=2026-10/focus12-00001.snappy.parquet",
        "cur/focus12/data/BILLING_PERIOD=2026-10/c.parquet",
        "cur/focus12/data/BILLING_PERIOD=2026-10/d.parquet",
    ]


def test_create_new_report_mode_reads_the_execution_folder_the_manifest_names() -> None:
    folder = "cur/focus12/data/BILLING_PERIOD=2026-10/20261025T0312Z-0a1b2c3d"
    keys = parse(
        {"executionId": "0a1b2c3d", "dataFiles": [f"s3://billing/{folder}/f-00001.parquet"]}
    )
    assert keys == [f"{folder}/f-00001.parquet"]


def test_an_empty_list_is_a_valid_manifest() -> None:
    assert parse({"dataFiles": []}) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>not json</html>", f"manifest {URI} is not valid JSON"),
        (b"\xff\xfe", f"manifest {URI} is not valid JSON"),
        (b'{"reportKeys": ["a.csv.gz"]}', f"manifest {URI} has no dataFiles list"),
        (b'["a.parquet"]', f"manifest {URI} has no dataFiles list"),
        (b'{"dataFiles": "a.parquet"}', f"manifest {URI} has no dataFiles list"),
        (b'{"dataFiles": [""]}', "has a dataFiles entry without a path"),
        (b'{"dataFiles": [{"etag": "x"}]}', "has a dataFiles entry without a path"),
        (b'{"dataFiles": [7]}', "has a dataFiles entry without a path"),
        (b'{"dataFiles": ["s3://billing"]}', "which has no object key"),
        (b'{"dataFiles": ["https://billing/a.parquet"]}', "which is not an S3 path"),
        (
            b'{"dataFiles": ["s3://elsewhere/a.parquet"]}',
            "lists s3://elsewhere/a.parquet, outside bucket 'billing'",
        ),
    ],
)
def test_bad_manifests_are_terminal_and_named(body: bytes, message: str) -> None:
    with pytest.raises(TerminalError) as err:
        parse_manifest(body, bucket="billing", manifest_uri=URI)
    assert message in str(err.value)
    assert URI in str(err.value)

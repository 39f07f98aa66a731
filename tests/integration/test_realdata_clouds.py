"""Real provider data through the cloud billing pipelines, in each cloud's delivery form.

The FinOps Foundation's anonymized real FOCUS 1.0 sample (../shared/realdata, see
tests/support/realdata.py) holds AWS, Microsoft and Oracle rows. Each provider's rows are
delivered the way that cloud delivers them and run through the shipped pipeline:
- AWS: a Parquet Data Export in moto's S3 (typed columns, Tags a map<string,string> that is
  empty on untagged rows, as AWS writes it), listed by the billing period's manifest.
- Microsoft: a Cost Management FocusCost export (dataVersion 1.0, gzipped CSV with a BOM)
  in Azurite, its run's manifest.json beside it. The CSV text is the sample's own, `NULL`
  literals of the dump included: they must arrive as nulls, never as the text "NULL".
- Oracle: a FOCUS cost report (gzipped CSV, empty fields for no value, as Oracle writes
  them) in the local OCI Object Storage server, read with the oci SDK and a signed key.

Expected totals per ChargeCategory are summed from the sample's text with Decimal
(tests/support/realdata.py), independently of the project's readers.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure.storage.blob import BlobServiceClient

from tests.support.azurite import azurite_blob, connection_string
from tests.support.cloud import assert_focus_rows_valid, focus_rows, money, run_pipeline
from tests.support.moto_server import MotoAws, moto_aws  # noqa: F401 - fixture
from tests.support.oci_object_storage import OciObjectStorageServer, make_api_key
from tests.support.realdata import DUMP_ONLY_COLUMNS, focus_sample, totals_by_category
from tests.support.servers import Server
from warehouse.duckdb import DuckDBWarehouse

__all__ = ["azurite_blob"]  # the fixture, imported to be used here

SEPT_START, SEPT_END = date(2024, 9, 1), date(2024, 9, 30)
COSTS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
NUMBERS = (*COSTS, "ConsumedQuantity", "ContractedUnitPrice", "ListUnitPrice", "PricingQuantity")
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")


def assert_totals_and_shape(rows: list[dict[str, Any]], source: list[dict[str, Any]]) -> None:
    assert len(rows) == len(source)
    assert_focus_rows_valid(rows)
    for column in COSTS:
        if any(r[column] is None for r in source):
            continue  # not in the file (Oracle has no ContractedCost): the procedure derives it
        got = totals_by_category(rows, column)
        want = totals_by_category(source, column)
        assert {k: money(v) for k, v in got.items()} == {k: money(v) for k, v in want.items()}, (
            column
        )
    for row in rows:
        # FOCUS: Tags is a JSON object or null, never a list or the text "NULL".
        assert row["Tags"] is None or isinstance(json.loads(row["Tags"]), dict), row["Tags"]
        for column in ("RegionId", "ResourceId", "AvailabilityZone", "CommitmentDiscountId"):
            assert row[column] != "NULL", column


def run_september(
    cloud: str, credential: dict[str, Any], source: list[dict[str, Any]], tmp_path: Path
) -> list[dict[str, Any]]:
    """The shipped pipeline over September 2024; its FOCUS rows, checked against the source."""
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    results = run_pipeline(
        warehouse,
        f"configs/cloud/{cloud}/cost/billing.yml",
        start=SEPT_START,
        end=SEPT_END,
        credential=credential,
    )
    assert results["extract"].rows_written == len(source)
    rows = focus_rows(warehouse, "acme", cloud)
    assert_totals_and_shape(rows, source)
    return rows


# -- AWS: Parquet in S3 ---------------------------------------------------------------------

AWS_BUCKET, AWS_PREFIX, AWS_EXPORT = "realdata-billing", "cur", "focus"
AWS_PERIOD = f"{AWS_PREFIX}/{AWS_EXPORT}/data/BILLING_PERIOD=2024-09"
AWS_FILE = f"{AWS_PERIOD}/20241002T010203Z-0a1b2c3d/{AWS_EXPORT}-00001.snappy.parquet"
AWS_MANIFEST = (
    f"{AWS_PREFIX}/{AWS_EXPORT}/metadata/BILLING_PERIOD=2024-09/{AWS_EXPORT}-Manifest.json"
)


def aws_parquet(source: list[dict[str, Any]]) -> bytes:
    """The sample's AWS rows typed as an AWS Data Export writes them."""

    def column(name: str) -> pa.Array:
        values = [r[name] for r in source]
        if name in NUMBERS:
            return pa.array(
                [None if v is None else Decimal(v) for v in values], pa.decimal128(38, 15)
            )
        if name in TIMES:
            return pa.array(
                [None if v is None else datetime.fromisoformat(v) for v in values],
                pa.timestamp("ms"),
            )
        if name == "Tags":  # AWS: an empty map on untagged rows, never null
            return pa.array(
                [sorted(json.loads(v).items()) if v else [] for v in values],
                pa.map_(pa.string(), pa.string()),
            )
        return pa.array(values, pa.string())

    names = list(source[0])
    out = io.BytesIO()
    pq.write_table(pa.table({n: column(n) for n in names}), out, compression="snappy")
    return out.getvalue()


@pytest.fixture(scope="module")
def aws_source() -> list[dict[str, Any]]:
    return focus_sample("AWS")


@pytest.fixture(scope="module")
def aws_export(moto_aws: MotoAws, aws_source: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:  # noqa: F811
    s3 = moto_aws.client("s3")
    s3.create_bucket(Bucket=AWS_BUCKET)
    s3.put_object(Bucket=AWS_BUCKET, Key=AWS_FILE, Body=aws_parquet(aws_source))
    manifest = {
        "version": "1.0",
        "exportName": AWS_EXPORT,
        "billingPeriod": "2024-09",
        "bucket": AWS_BUCKET,
        "dataFiles": [f"s3://{AWS_BUCKET}/{AWS_FILE}"],
    }
    s3.put_object(Bucket=AWS_BUCKET, Key=AWS_MANIFEST, Body=json.dumps(manifest).encode())
    yield {
        **moto_aws.users["reader"],
        "region": "us-east-1",
        "endpoint_url": moto_aws.url,
        "bucket": AWS_BUCKET,
        "prefix": AWS_PREFIX,
        "export_name": AWS_EXPORT,
    }


def test_aws_real_sample_as_a_parquet_export_matches_per_charge_category(
    aws_export: dict[str, Any], aws_source: list[dict[str, Any]], tmp_path: Path
) -> None:
    rows = run_september("aws", aws_export, aws_source, tmp_path)
    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Credit"}
    # Untagged rows arrive as an empty map: {} (an object), the tagged ones keep their tags.
    untagged = sum(1 for r in aws_source if r["Tags"] is None)
    assert sum(1 for r in rows if r["Tags"] == "{}") == untagged > 0

    def canonical(tags: list[str | None]) -> list[str]:
        return sorted(json.dumps(json.loads(t or "{}"), sort_keys=True) for t in tags)

    assert canonical([r["Tags"] for r in rows]) == canonical([r["Tags"] for r in aws_source])


# -- Microsoft: FocusCost CSV.gz in Azure Blob Storage --------------------------------------

AZ_CONTAINER, AZ_ROOT, AZ_EXPORT = "realdata", "exports/focus", "realdata-focus"
AZ_RUN = f"{AZ_ROOT}/{AZ_EXPORT}/20240901-20240930/run-1"


def azure_csv_gz(source: list[dict[str, Any]]) -> bytes:
    """The sample's rows as CSV text, NULL where the dump has no value, with Azure's BOM."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\n")
    names = [n for n in source[0] if n not in DUMP_ONLY_COLUMNS]
    writer.writerow(names)
    for row in source:
        writer.writerow(["NULL" if row[n] is None else row[n] for n in names])
    return gzip.compress(out.getvalue().encode("utf-8"))


def azure_manifest(blob: str, data: bytes, rows: int) -> bytes:
    return json.dumps(
        {
            "manifestVersion": "2024-04-01",
            "byteCount": len(data),
            "blobCount": 1,
            "dataRowCount": rows,
            "exportConfig": {
                "exportName": AZ_EXPORT,
                "dataVersion": "1.0",
                "type": "FocusCost",
                "timeFrame": "MonthToDate",
                "granularity": "Daily",
            },
            "deliveryConfig": {
                "partitionData": True,
                "dataOverwriteBehavior": "CreateNewReport",
                "fileFormat": "Csv",
                "compressionMode": "gzip",
                "rootFolderPath": AZ_ROOT,
            },
            "blobs": [{"blobName": blob, "byteCount": len(data), "dataRowCount": rows}],
            "runInfo": {
                "executionType": "Scheduled",
                "submittedTime": "2024-10-02T05:59:01.9013967Z",
                "runId": "run-1",
                "startDate": "2024-09-01T00:00:00",
                "endDate": "2024-09-30T00:00:00",
            },
        }
    ).encode()


@pytest.fixture(scope="module")
def azure_source() -> list[dict[str, Any]]:
    return focus_sample("Microsoft")


@pytest.fixture(scope="module")
def azure_export(
    azurite_blob: Server,
    azure_source: list[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    service = BlobServiceClient.from_connection_string(connection_string(azurite_blob))
    container = service.get_container_client(AZ_CONTAINER)
    if container.exists():
        container.delete_container()
    container.create_container()
    blob, data = f"{AZ_RUN}/part_0_0001.csv.gz", azure_csv_gz(azure_source)
    container.upload_blob(blob, data)
    container.upload_blob(f"{AZ_RUN}/manifest.json", azure_manifest(blob, data, len(azure_source)))
    yield {
        "connection_string": connection_string(azurite_blob),
        "container": AZ_CONTAINER,
        "root_folder": AZ_ROOT,
        "export_name": AZ_EXPORT,
    }
    container.delete_container()


def test_microsoft_real_sample_as_a_focus_cost_csv_gz_matches_per_charge_category(
    azure_export: dict[str, Any], azure_source: list[dict[str, Any]], tmp_path: Path
) -> None:
    rows = run_september("azure", azure_export, azure_source, tmp_path)
    # The dump's NULLs are nulls: as many null Tags and ResourceIds as the source has.
    for column in ("Tags", "ResourceId", "CommitmentDiscountId"):
        assert sum(1 for r in rows if r[column] is None) == sum(
            1 for r in azure_source if r[column] is None
        ), column


# -- Oracle: FOCUS cost report CSV.gz in OCI Object Storage ---------------------------------

OCI_NS = "bling"
OCI_TENANCY = "ocid1.tenancy.oc1..aaaaaaaarealdatatenancy"
OCI_USER = "ocid1.user.oc1..aaaaaaaarealdatareader"
OCI_REPORT = "FOCUS Reports/2024/09/30/0001000000001234.csv.gz"


def oracle_csv_gz(source: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(source[0])
    writer.writerow(names)
    for row in source:
        writer.writerow(["" if row[n] is None else row[n] for n in names])
    return gzip.compress(out.getvalue().encode("utf-8"))


@pytest.fixture(scope="module")
def oracle_source() -> list[dict[str, Any]]:
    return focus_sample("Oracle")


@pytest.fixture(scope="module")
def oracle_report(oracle_source: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    server = OciObjectStorageServer()
    key = make_api_key(OCI_TENANCY, OCI_USER)
    server.register_key(key)
    server.create_bucket(OCI_NS, OCI_TENANCY)
    server.grant(OCI_USER, OCI_NS, OCI_TENANCY)
    server.put_object(
        OCI_NS,
        OCI_TENANCY,
        OCI_REPORT,
        oracle_csv_gz(oracle_source),
        time_created=datetime(2024, 9, 30, tzinfo=UTC),
    )
    yield {
        "user": key.user,
        "fingerprint": key.fingerprint,
        "tenancy": key.tenancy,
        "region": "eu-frankfurt-1",
        "key_content": key.private_pem,
        "service_endpoint": server.url,
    }
    server.close()


def test_oracle_real_sample_as_a_cost_report_matches_per_charge_category(
    oracle_report: dict[str, Any], oracle_source: list[dict[str, Any]], tmp_path: Path
) -> None:
    rows = run_september("oci", oracle_report, oracle_source, tmp_path)
    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Adjustment"}

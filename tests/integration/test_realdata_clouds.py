"""Real provider data through the cloud billing pipelines, in each cloud's delivery form.

The FinOps Foundation's anonymized real FOCUS 1.0 sample (../shared/realdata, see
tests/support/realdata.py) holds AWS, Microsoft and Oracle rows. Each provider's rows are
delivered the way that cloud delivers them and run through the shipped pipeline:
- AWS: a Parquet Data Export in moto's S3 (typed columns, Tags a map<string,string> that is
  empty on untagged rows, as AWS writes it), listed by the billing period's manifest.

Expected totals per ChargeCategory are summed from the sample's text with Decimal
(tests/support/realdata.py), independently of the project's readers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.cloud import assert_focus_rows_valid, focus_rows, money, run_pipeline
from tests.support.moto_server import MotoAws, moto_aws  # noqa: F401 - fixture
from tests.support.realdata import focus_sample, totals_by_category
from warehouse.duckdb import DuckDBWarehouse

SEPT_START, SEPT_END = date(2024, 9, 1), date(2024, 9, 30)
COSTS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
NUMBERS = (*COSTS, "ConsumedQuantity", "ContractedUnitPrice", "ListUnitPrice", "PricingQuantity")
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")


def assert_totals_and_shape(rows: list[dict[str, Any]], source: list[dict[str, Any]]) -> None:
    assert len(rows) == len(source)
    assert_focus_rows_valid(rows)
    for column in COSTS:
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
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    results = run_pipeline(
        warehouse,
        "configs/cloud/aws/cost/billing.yml",
        start=SEPT_START,
        end=SEPT_END,
        credential=aws_export,
    )
    assert results["extract"].rows_written == len(aws_source)
    rows = focus_rows(warehouse, "acme", "aws")
    assert_totals_and_shape(rows, aws_source)
    assert {r["ChargeCategory"] for r in rows} == {"Usage", "Credit"}
    # Untagged rows arrive as an empty map: {} (an object), the tagged ones keep their tags.
    untagged = sum(1 for r in aws_source if r["Tags"] is None)
    assert sum(1 for r in rows if r["Tags"] == "{}") == untagged > 0
    def canonical(tags: list[str | None]) -> list[str]:
        return sorted(json.dumps(json.loads(t or "{}"), sort_keys=True) for t in tags)

    assert canonical([r["Tags"] for r in rows]) == canonical([r["Tags"] for r in aws_source])

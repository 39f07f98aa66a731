"""read_export_file: Parquet, CSV and gzipped CSV in; a clear TerminalError for anything else."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_ops_core.errors import TerminalError
from processors.cloud.exports.files import export_format, open_export_file, read_export_file

CSV = "\ufeffBilledCost,ChargePeriodStart,Tags\n1.50,2026-10-01T00:00:00Z,\n007,2026-10-02,x\n"


def test_csv_columns_are_text_and_empty_fields_null() -> None:
    table = read_export_file("part_0_0001.csv", CSV.encode())
    assert table.column_names == ["BilledCost", "ChargePeriodStart", "Tags"]
    assert all(field.type == pa.string() for field in table.schema)
    # Leading zeros survive: typing is the normalizer's job, not the reader's.
    assert table.column("BilledCost").to_pylist() == ["1.50", "007"]
    assert table.column("Tags").to_pylist() == [None, "x"]


def test_gzipped_csv_and_parquet() -> None:
    assert read_export_file("r.csv.gz", gzip.compress(CSV.encode())).num_rows == 2
    sink = io.BytesIO()
    pq.write_table(pa.table({"BilledCost": [1.5, 2.0]}), sink)
    table = read_export_file("data/x-00001.snappy.parquet", sink.getvalue())
    assert table.column("BilledCost").to_pylist() == [1.5, 2.0]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("f.parquet", b"PAR1 not really", "f.parquet: not a readable Parquet file"),
        ("f.csv.gz", b"\x1f\x8b\x08garbage", "f.csv.gz: not a readable gzip file"),
        ("f.csv", b"", "f.csv: not a readable CSV file (the file is empty)"),
        ("f.csv", b"a,a\n1,2\n", "blank or repeated column names"),
        ("f.csv", b"a,b\n1,2,3\n", "f.csv: not a readable CSV file"),
        ("f.json", b"{}", "f.json: unsupported export file type"),
    ],
)
def test_unreadable_files_fail_with_the_file_name(name: str, data: bytes, message: str) -> None:
    with pytest.raises(TerminalError) as info:
        read_export_file(name, data)
    assert message in str(info.value)


def test_format_from_name() -> None:
    assert export_format("A/B.PARQUET") == "parquet"
    assert export_format("FOCUS Reports/2026/10/01/0001.csv.gz") == "csv.gz"
    assert export_format("x.csv") == "csv"


@pytest.mark.parametrize("name", ["dump.csv", "dump.csv.gz"])
def test_csv_null_tokens_are_null_in_every_column(name: str) -> None:
    # A MySQL dump (the FinOps Foundation's FOCUS sample is one) writes NULL for no value.
    text = "BilledCost,Tags,RegionId,ChargeDescription\n1.5,NULL,NULL,NULL storage\n2,,null,x\n"
    data = text.encode()
    table = read_export_file(name, gzip.compress(data) if name.endswith(".gz") else data)
    assert table.column("Tags").to_pylist() == [None, None]
    assert table.column("RegionId").to_pylist() == [None, "null"]  # only the exact token
    assert table.column("ChargeDescription").to_pylist() == ["NULL storage", "x"]


def test_parquet_text_is_taken_as_written() -> None:
    # Parquet has real nulls: a "NULL" string in a Parquet file is a value, not a token.
    sink = io.BytesIO()
    pq.write_table(pa.table({"Tags": ["NULL", None]}), sink)
    table = read_export_file("f.parquet", sink.getvalue())
    assert table.column("Tags").to_pylist() == ["NULL", None]


def test_files_are_read_in_batches() -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"BilledCost": [float(i) for i in range(10)]}), sink)
    parquet = open_export_file("p.parquet", sink.getvalue(), batch_rows=4)
    assert [b.num_rows for b in parquet] == [4, 4, 2]
    text = "Cost\n" + "".join(f"{i:04d}\n" for i in range(100))
    reader = open_export_file("c.csv.gz", gzip.compress(text.encode()), csv_block_bytes=64)
    got = [b.column(0).to_pylist() for b in reader]
    assert len(got) > 5
    assert [v for part in got for v in part] == [f"{i:04d}" for i in range(100)]


def test_a_csv_unreadable_half_way_fails_with_the_file_name_when_read() -> None:
    text = "a,b\n" + "1,2\n" * 50 + "1,2,3\n"
    reader = open_export_file("late.csv", text.encode(), csv_block_bytes=64)
    first = reader.read_next_batch()  # the first block is fine
    assert first.column_names == ["a", "b"]
    with pytest.raises(TerminalError, match=r"late\.csv: not a readable CSV file"):
        reader.read_all()

"""Billing export files (Parquet, CSV, gzipped CSV) as Arrow tables, with clear errors.

Exports arrive as object-store bytes; the format is taken from the object name, as the
clouds name their files by it. CSV columns are read as text (typing is the normalizer's
job: a cost column must not become an integer because one file happened to hold whole
numbers), and empty fields are nulls.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from errors import TerminalError


def export_format(name: str) -> str:
    """'parquet', 'csv' or 'csv.gz' for an object name, else TerminalError."""
    lowered = name.lower()
    if lowered.endswith(".parquet"):
        return "parquet"
    if lowered.endswith((".csv.gz", ".gz")):
        return "csv.gz"
    if lowered.endswith(".csv"):
        return "csv"
    raise TerminalError(
        f"{name}: unsupported export file type (expected .parquet, .csv or .csv.gz)"
    )


def read_export_file(name: str, data: bytes) -> pa.Table:
    kind = export_format(name)
    if kind == "parquet":
        return _read_parquet(name, data)
    if kind == "csv.gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TerminalError(f"{name}: not a readable gzip file ({exc})") from None
    return _read_csv(name, data)


def _read_parquet(name: str, data: bytes) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TerminalError(f"{name}: not a readable Parquet file ({exc})") from None


def _read_csv(name: str, data: bytes) -> pa.Table:
    if not data.strip():
        raise TerminalError(f"{name}: not a readable CSV file (the file is empty)")
    try:
        # The header names every column so all of them can be read as text; Azure writes a BOM.
        first_line = data.split(b"\n", 1)[0].decode("utf-8-sig")
        header = next(csv.reader([first_line]))
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise TerminalError(f"{name}: not a readable CSV file (bad header: {exc})") from None
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise TerminalError(f"{name}: not a readable CSV file (blank or repeated column names)")
    try:
        return pacsv.read_csv(
            io.BytesIO(data.removeprefix(b"\xef\xbb\xbf")),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowException, ValueError) as exc:
        raise TerminalError(f"{name}: not a readable CSV file ({exc})") from None

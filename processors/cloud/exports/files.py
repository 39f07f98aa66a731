"""Billing export files (Parquet, CSV, gzipped CSV) as Arrow tables, with clear errors.

Exports arrive as object-store streams, copied to a capped local file by each source
(`ExportSource.fetch`); the format is taken from the object name, as the clouds name their
files by it. Fetching and parsing stay separate steps, so parsing can go batch-wise. CSV
columns are read as text (typing is the normalizer's job: a cost column must not become an
integer because one file happened to hold whole numbers), and empty fields are nulls.
"""

from __future__ import annotations

import csv
import io
import zlib
from typing import BinaryIO, TextIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline_ops_core.egress import Limits, file_chunks, inflate, spool
from pipeline_ops_core.errors import TerminalError

# The text that means "no value", per delivery format. CSV has no null of its own: the
# clouds leave the field empty, and database dumps (MySQL's, as in the FinOps Foundation's
# FOCUS sample) write NULL. Exact tokens only: "null" or "N/A" stay text, a description
# may legitimately read "NULL storage". Parquet has real nulls, so its text is taken as
# written. The batch-wise reader builds its options from here too.
NULL_TOKENS: dict[str, tuple[str, ...]] = {
    "csv": ("", "NULL"),
    "csv.gz": ("", "NULL"),
    "parquet": (),
}


def csv_records(handle: TextIO, kind: str = "csv") -> list[dict[str, str | None]]:
    """A small CSV (usage exports, billing rows) as dicts, the format's null tokens None."""
    nulls = set(NULL_TOKENS[kind])
    return [
        {k: None if v in nulls else v for k, v in row.items()} for row in csv.DictReader(handle)
    ]


def csv_convert_options(header: list[str], kind: str) -> pacsv.ConvertOptions:
    """Every column as text (typing is the normalizer's job), the format's null tokens null."""
    return pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header},
        strings_can_be_null=True,
        null_values=list(NULL_TOKENS[kind]),
    )


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


def read_export_file(name: str, data: bytes | BinaryIO, limits: Limits | None = None) -> pa.Table:
    """Parse one export file: raw bytes, or a local file from `ExportSource.fetch`.

    A gzipped CSV is inflated as a stream into a local file first, with the caps on
    inflated size and ratio (a gzip bomb stops early, never in memory).
    """
    limits = limits or Limits.from_env()
    kind = export_format(name)
    handle: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    if kind == "parquet":
        return _read_parquet(name, handle)
    if kind == "csv.gz":
        handle = gunzip_to_file(name, handle, limits)
    return _read_csv(name, handle, kind)


def gunzip_to_file(name: str, handle: BinaryIO, limits: Limits) -> BinaryIO:
    try:
        return spool(
            inflate(file_chunks(handle), limits, name), limits, name, cap="max_inflated_bytes"
        )
    except (OSError, EOFError, zlib.error) as exc:
        raise TerminalError(f"{name}: not a readable gzip file ({exc})") from None


def _read_parquet(name: str, handle: BinaryIO) -> pa.Table:
    try:
        return pq.read_table(handle)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TerminalError(f"{name}: not a readable Parquet file ({exc})") from None


def _read_csv(name: str, handle: BinaryIO, kind: str = "csv") -> pa.Table:
    first_line = handle.readline()
    if not first_line.strip() and not _has_text(handle):
        raise TerminalError(f"{name}: not a readable CSV file (the file is empty)")
    try:
        # The header names every column so all of them can be read as text; Azure writes a BOM.
        header = next(csv.reader([first_line.decode("utf-8-sig")]))
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise TerminalError(f"{name}: not a readable CSV file (bad header: {exc})") from None
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise TerminalError(f"{name}: not a readable CSV file (blank or repeated column names)")
    handle.seek(len(BOM) if first_line.startswith(BOM) else 0)
    try:
        return pacsv.read_csv(
            handle,
            convert_options=csv_convert_options(header, kind),
        )
    except (pa.ArrowException, ValueError) as exc:
        raise TerminalError(f"{name}: not a readable CSV file ({exc})") from None


BOM = b"\xef\xbb\xbf"


def _has_text(handle: BinaryIO) -> bool:
    while chunk := handle.read(1024 * 1024):
        if chunk.strip():
            return True
    return False

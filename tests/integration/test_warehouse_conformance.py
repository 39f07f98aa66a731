"""One conformance suite for every warehouse backend: DuckDB, and BigQuery on the emulator.

Each test runs once per backend through the Warehouse protocol only, and each gets its own
dataset. What DuckDB has no notion of (location, partitions, clustering, job reuse, staging
tables, service-account clients, the CLI on BigQuery) is in test_warehouse_bigquery.py;
the demo pipeline end to end on both backends is in test_warehouse_e2e.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.runs.lineage import stamp
from pipeline_ops_core.errors import InvalidIdentifierError, TerminalError
from tests.integration.bigquery_emulator import PROJECT, bigquery_emulator  # noqa: F401
from tests.support.servers import Server
from warehouse import from_url
from warehouse.base import LINEAGE_FIELDS, LineageKey, TableRef, Warehouse
from warehouse.schemas import TABLE_SCHEMAS, with_lineage

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
AT = datetime(2026, 1, 4, 8, 30, 15, 123456, tzinfo=UTC)
USAGE, PRICES = TABLE_SCHEMAS["demo_usage_raw"], TABLE_SCHEMAS["demo_prices"]


def bigquery_url(emulator: Server, project: str = PROJECT) -> str:
    return f"bigquery://{project}?location=US&endpoint={emulator.url}"


@pytest.fixture(params=["duckdb", "bigquery"])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "duckdb":
        return from_url(f"duckdb:///{tmp_path}/warehouse.duckdb")
    return from_url(bigquery_url(request.getfixturevalue("bigquery_emulator")))


@pytest.fixture
def ds(wh: Warehouse) -> Iterator[str]:
    """A fresh org dataset per test: the emulator is shared by the whole session."""
    name = f"t{uuid.uuid4().hex[:10]}_dev"
    wh.ensure_dataset(name)
    yield name


def key(
    org: str = "acme", start: date = D1, end: date | None = None, cred: str = "main"
) -> LineageKey:
    return LineageKey(org, "demo_pipe", cred, start, end or start)


def usage(k: LineageKey, items: list[tuple], run_id: str = "run_1") -> pa.Table:
    """Stamped usage rows of (usage_date, provider, model, input, output, requests)."""
    cols = list(zip(*items, strict=True)) if items else [()] * 6
    data = {
        name: pa.array(list(col), USAGE.field(name).type)
        for name, col in zip(USAGE.names, cols, strict=True)
    }
    return stamp(pa.table(data), k, run_id, AT, date_column="usage_date")


def prices(k: LineageKey, items: list[tuple], run_id: str = "run_1") -> pa.Table:
    cols = list(zip(*items, strict=True))
    data = {
        n: pa.array(list(c), PRICES.field(n).type) for n, c in zip(PRICES.names, cols, strict=True)
    }
    return stamp(pa.table(data), k, run_id, AT)


def ensure(wh: Warehouse, ds: str, name: str) -> TableRef:
    ref = TableRef(ds, name)
    wh.ensure_table(ref, with_lineage(TABLE_SCHEMAS[name]))
    return ref


def read(wh: Warehouse, ref: TableRef, columns: str = "*", where: str = "TRUE") -> list[dict]:
    out = wh.query(f"SELECT {columns} FROM `{ref}` WHERE {where}")
    return sorted(out.to_pylist(), key=lambda r: [str(v) for v in r.values()])


# --- tables and types ---------------------------------------------------------------------

TYPED = pa.schema(
    [
        pa.field("s", pa.string()),
        pa.field("i", pa.int64()),
        pa.field("f", pa.float64()),
        pa.field("b", pa.bool_()),
        pa.field("d", pa.date32()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("dt", pa.timestamp("us")),
        pa.field("n", pa.decimal128(38, 9)),
        pa.field("req", pa.string(), nullable=False),
        *LINEAGE_FIELDS,
    ]
)


def test_ensure_table_keeps_names_types_and_not_null(wh: Warehouse, ds: str) -> None:
    ref = TableRef(ds, "typed")
    assert wh.table_schema(ref) is None
    wh.ensure_table(ref, TYPED)
    wh.ensure_table(ref, TYPED)  # idempotent
    assert wh.table_schema(ref) == TYPED

    k = key()
    row = {
        "s": "it's \\ ü",
        "i": 2**62,
        "f": 0.1,
        "b": True,
        "d": D1,
        "ts": AT,
        "dt": datetime(2026, 1, 1, 23, 59, 59, 999999),
        "n": Decimal("12345678901234567890.123456789"),
        "req": "x",
    }
    data = pa.Table.from_pylist([row], schema=pa.schema(list(TYPED)[: len(row)]))
    rows = stamp(data, k, "run_1", AT)
    wh.write_partition(ref, rows, k)
    got = read(wh, ref, ", ".join(row))
    assert got == [row]


def test_ensure_table_refuses_unsupported_types_and_missing_partition_field(
    wh: Warehouse, ds: str
) -> None:
    with pytest.raises(TerminalError, match=r"'blob'.*unsupported Arrow type binary"):
        wh.ensure_table(TableRef(ds, "t"), pa.schema([("blob", pa.binary())]), "", ())
    with pytest.raises(TerminalError, match="'x_ingestion_date' not in schema"):
        wh.ensure_table(TableRef(ds, "t"), pa.schema([("a", pa.string())]))
    assert wh.table_schema(TableRef(ds, "t")) is None


# --- idempotent writes --------------------------------------------------------------------


def test_replace_twice_gives_the_same_rows_and_leaves_other_keys_alone(
    wh: Warehouse, ds: str
) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    acme = usage(key(end=D2), [(D1, "openai", "gpt-4o", 100, 10, 1), (D2, "openai", "o1", 5, 6, 7)])
    others = [
        (usage(key(org="beta"), [(D1, "openai", "gpt-4o", 999, 99, 9)]), key(org="beta")),
        (usage(key(start=D3), [(D3, "openai", "gpt-4o", 300, 30, 3)]), key(start=D3)),
        (usage(key(cred="other"), [(D1, "openai", "o1", 5, 5, 5)]), key(cred="other")),
    ]
    first = wh.write_partition(ref, acme, key(end=D2))
    assert (first.rows_written, first.rows_deleted) == (2, 0)
    for rows, k in others:
        wh.write_partition(ref, rows, k)
    before = read(wh, ref)
    assert len(before) == 5

    again = wh.write_partition(ref, acme, key(end=D2))
    assert (again.table, again.rows_written, again.rows_deleted) == (str(ref), 2, 2)
    assert read(wh, ref) == before

    # A re-run with fewer rows replaces exactly its slice, and nothing else.
    smaller = usage(key(end=D2), [(D1, "openai", "gpt-4o", 111, 11, 1)], run_id="run_2")
    result = wh.write_partition(ref, smaller, key(end=D2))
    assert (result.rows_written, result.rows_deleted) == (1, 2)
    after = read(wh, ref)
    assert len(after) == 4
    assert [r for r in after if r["x_run_id"] == "run_2"] == smaller.to_pylist()
    assert [r for r in after if r["x_run_id"] != "run_2"] == [
        r
        for r in before
        if r["x_org_slug"] != "acme"
        or r["x_credential_id"] != "main"
        or r["x_pipeline_run_date"] == D3
    ]


def test_an_empty_replace_deletes_the_slice(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    wh.write_partition(ref, usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)]), key())
    result = wh.write_partition(ref, usage(key(), []), key())
    assert (result.rows_written, result.rows_deleted) == (0, 1)
    assert read(wh, ref) == []


def test_merge_upserts_by_key_within_the_org(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_prices")
    wh.write_partition(
        ref, prices(key(org="beta"), [("openai", "gpt-4o", 9.0, 9.0)]), key(org="beta")
    )
    first = prices(key(), [("openai", "gpt-4o", 2.5, 10.0), ("openai", "o1", 15.0, 60.0)])
    wh.write_partition(ref, first, key(), mode="merge", merge_keys=("provider", "model"))
    update = prices(
        key(), [("openai", "gpt-4o", 2.0, 8.0), ("anthropic", "claude", 3.0, 15.0)], "run_2"
    )
    result = wh.write_partition(ref, update, key(), mode="merge", merge_keys=("provider", "model"))
    assert (result.rows_written, result.rows_deleted) == (2, 1)
    got = read(wh, ref, "x_org_slug, provider, model, input_per_mtok, x_run_id")
    assert got == [
        {
            "x_org_slug": "acme",
            "provider": "anthropic",
            "model": "claude",
            "input_per_mtok": 3.0,
            "x_run_id": "run_2",
        },
        {
            "x_org_slug": "acme",
            "provider": "openai",
            "model": "gpt-4o",
            "input_per_mtok": 2.0,
            "x_run_id": "run_2",
        },
        {
            "x_org_slug": "acme",
            "provider": "openai",
            "model": "o1",
            "input_per_mtok": 15.0,
            "x_run_id": "run_1",
        },
        {
            "x_org_slug": "beta",
            "provider": "openai",
            "model": "gpt-4o",
            "input_per_mtok": 9.0,
            "x_run_id": "run_1",
        },
    ]


def test_all_seven_lineage_columns_with_their_types(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    wh.write_partition(ref, usage(key(end=D2), [(D2, "openai", "gpt-4o", 1, 2, 3)]), key(end=D2))
    schema = wh.table_schema(ref)
    assert schema is not None
    assert [schema.field(f.name) for f in LINEAGE_FIELDS] == list(LINEAGE_FIELDS)
    names = ", ".join(f.name for f in LINEAGE_FIELDS)
    assert read(wh, ref, names) == [
        {
            "x_org_slug": "acme",
            "x_pipeline_id": "demo_pipe",
            "x_credential_id": "main",
            "x_pipeline_run_date": D2,
            "x_run_id": "run_1",
            "x_ingested_at": AT,
            "x_ingestion_date": AT.date(),
        }
    ]


def test_a_failed_insert_inside_the_transaction_leaves_the_old_rows(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    old = usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3), (D1, "openai", "o1", 4, 5, 6)])
    wh.write_partition(ref, old, key())
    new = usage(key(), [(D1, "openai", "gpt-4o", 7, 8, 9), (D1, "openai", "o1", 1, 1, 1)], "run_2")
    # The DELETE of the key runs first; then the INSERT cannot put 'many' into INT64.
    # (Not a NULL in a NOT NULL column: the emulator does not enforce REQUIRED on tables
    # made through the tables API, emulator gap 6; DuckDB and BigQuery both do.)
    idx = new.schema.get_field_index("requests")
    bad = new.set_column(idx, "requests", pa.array(["9", "many"], pa.string()))
    with pytest.raises(TerminalError):
        wh.write_partition(ref, bad, key())
    assert read(wh, ref) == sorted(old.to_pylist(), key=lambda r: [str(v) for v in r.values()])


# --- streamed writes (record batches) ------------------------------------------------------


def stream(*tables: pa.Table, size: int = 2) -> pa.RecordBatchReader:
    parts = [b for t in tables for b in t.to_batches(max_chunksize=size)]
    return pa.RecordBatchReader.from_batches(tables[0].schema, parts)


def test_a_streamed_replace_writes_every_batch_and_replaces_only_its_slice(
    wh: Warehouse, ds: str
) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    wh.write_partition(ref, usage(key(), [(D1, "openai", "gpt-4o", 1, 1, 1)]), key())
    beta = usage(key(org="beta"), [(D1, "openai", "gpt-4o", 999, 99, 9)])
    wh.write_partition(ref, beta, key(org="beta"))
    items = [(D1, "openai", f"m{i}", i, i, i) for i in range(3)]
    items += [(D2, "anthropic", f"c{i}", i, i, i) for i in range(2)]
    rows = usage(key(end=D2), items, run_id="run_2")

    first = wh.write_stream(ref, stream(rows), key(end=D2))  # 3 batches
    assert (first.table, first.rows_written, first.rows_deleted) == (str(ref), 5, 1)
    again = wh.write_stream(ref, stream(rows, size=1), key(end=D2))
    assert (again.rows_written, again.rows_deleted) == (5, 5)
    expected = sorted(
        rows.to_pylist() + beta.to_pylist(), key=lambda r: [str(v) for v in r.values()]
    )
    assert read(wh, ref) == expected


def test_an_empty_stream_deletes_the_slice(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    wh.write_partition(ref, usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)]), key())
    empty = usage(key(), [])
    result = wh.write_stream(ref, pa.RecordBatchReader.from_batches(empty.schema, []), key())
    assert (result.rows_written, result.rows_deleted) == (0, 1)
    assert read(wh, ref) == []


def test_a_streamed_batch_outside_the_key_rolls_the_whole_write_back(
    wh: Warehouse, ds: str
) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    old = usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)])
    wh.write_partition(ref, old, key())
    good = usage(key(), [(D1, "openai", "o1", 4, 5, 6), (D1, "openai", "o3", 7, 8, 9)], "run_2")
    stray = usage(key(org="beta"), [(D1, "openai", "gpt-4o", 9, 9, 9)], "run_2")
    with pytest.raises(TerminalError, match="do not match the lineage key in column"):
        wh.write_stream(ref, stream(good, stray), key())
    assert read(wh, ref) == old.to_pylist()


def test_a_reader_failing_half_way_rolls_the_whole_write_back(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    old = usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)])
    wh.write_partition(ref, old, key())
    good = usage(key(), [(D1, "openai", "o1", 4, 5, 6)], "run_2")

    def batches() -> Iterator[pa.RecordBatch]:
        yield from good.to_batches()
        raise TerminalError("part_2.parquet: not a readable Parquet file")

    reader = pa.RecordBatchReader.from_batches(good.schema, batches())
    # The reader's own error, unchanged (so a TransientError stays retryable).
    with pytest.raises(TerminalError, match=r"part_2\.parquet: not a readable Parquet file"):
        wh.write_stream(ref, reader, key())
    assert read(wh, ref) == old.to_pylist()


def test_a_stream_with_a_hostile_column_name_is_refused_before_any_sql(
    wh: Warehouse, ds: str
) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    old = usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)])
    wh.write_partition(ref, old, key())
    bad = old.append_column('x"; DROP TABLE t; --', pa.array(["boom"]))
    with pytest.raises(InvalidIdentifierError, match="invalid column name"):
        wh.write_stream(ref, stream(bad), key())
    assert read(wh, ref) == old.to_pylist()


# --- queries, procedures, schema sync -----------------------------------------------------


def test_query_parameters_of_every_type(wh: Warehouse, ds: str) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    wh.write_partition(
        ref,
        usage(key(end=D2), [(D1, "openai", "gpt-4o", 100, 10, 1), (D2, "openai", "o1", 5, 6, 7)]),
        key(end=D2),
    )
    got = wh.query(
        f"SELECT model, input_tokens FROM `{ref}` WHERE x_org_slug = @org"
        " AND usage_date BETWEEN @start AND @end AND input_tokens >= @min"
        " AND x_ingested_at <= @at AND (@flag OR FALSE) AND requests * @ratio > 0",
        {"org": "acme", "start": D1, "end": D2, "min": 50, "at": AT, "flag": True, "ratio": 0.5},
    )
    assert got.to_pylist() == [{"model": "gpt-4o", "input_tokens": 100}]
    typed = wh.query(
        "SELECT @s AS s, @i AS i, @f AS f, @b AS b, @d AS d, @ts AS ts, CAST(@n AS NUMERIC) AS n",
        {"s": "o'k", "i": -3, "f": 1.5, "b": False, "d": D3, "ts": AT, "n": Decimal("1.25")},
    )
    assert typed.to_pylist() == [
        {"s": "o'k", "i": -3, "f": 1.5, "b": False, "d": D3, "ts": AT, "n": Decimal("1.25")}
    ]
    with pytest.raises(TerminalError, match="one statement"):
        wh.query("SELECT 1; SELECT 2")


def test_procedure_sp_demo_daily_cost_is_idempotent(wh: Warehouse, ds: str) -> None:
    raw, price = ensure(wh, ds, "demo_usage_raw"), ensure(wh, ds, "demo_prices")
    k = key(end=D2)
    wh.write_partition(
        raw,
        usage(
            k,
            [(D1, "openai", "gpt-4o", 2_000_000, 1_000_000, 3), (D2, "openai", "gpt-4o", 1, 0, 1)],
        ),
        k,
    )
    wh.write_partition(price, prices(k, [("openai", "gpt-4o", 2.5, 10.0)]), k)
    assert "sp_demo_daily_cost" in wh.bootstrap_procedures(ds)
    args = {
        "p_start_date": D1,
        "p_end_date": D2,
        "p_org_slug": "acme",
        "p_pipeline_id": "demo_pipe",
        "p_credential_id": "main",
        "p_run_id": "run_9",
    }
    wh.call_procedure(ds, "sp_demo_daily_cost", args)
    wh.call_procedure(ds, "sp_demo_daily_cost", args)  # same key again: same rows
    got = read(wh, TableRef(ds, "demo_daily_cost"), "usage_date, cost_usd, x_run_id")
    assert got == [
        {"usage_date": D1, "cost_usd": 15.0, "x_run_id": "run_9"},
        {"usage_date": D2, "cost_usd": 2.5e-06, "x_run_id": "run_9"},
    ]
    with pytest.raises(TerminalError, match="missing argument"):
        wh.call_procedure(ds, "sp_demo_daily_cost", {"p_start_date": D1})


def test_add_missing_columns_adds_nullable_columns_and_never_retypes(
    wh: Warehouse, ds: str
) -> None:
    ref = ensure(wh, ds, "demo_usage_raw")
    wh.write_partition(ref, usage(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)]), key())
    wider = with_lineage(USAGE).append(pa.field("region", pa.string(), nullable=False))
    wider = wider.append(pa.field("cached_tokens", pa.int64()))
    wider = wider.set(wider.get_field_index("requests"), pa.field("requests", pa.string()))

    assert wh.add_missing_columns(ref, wider) == ["region", "cached_tokens"]
    assert wh.add_missing_columns(ref, wider) == []
    got = wh.table_schema(ref)
    assert got is not None and got.field("requests").type == pa.int64()
    assert got.field("region") == pa.field("region", pa.string(), nullable=True)
    assert read(wh, ref, "requests, region, cached_tokens") == [
        {"requests": 3, "region": None, "cached_tokens": None}
    ]
    with pytest.raises(TerminalError, match="does not exist"):
        wh.add_missing_columns(TableRef(ds, "nope"), wider)

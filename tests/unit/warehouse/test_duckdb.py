"""DuckDB warehouse backend: real files under tmp_path, real rows, no mocks."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipeline_ops_core.errors import (
    InvalidIdentifierError,
    TerminalError,
    TransientError,
    WarehouseLockTimeout,
)
from warehouse import from_url
from warehouse.base import LINEAGE_FIELDS, LineageKey, LockWait, TableRef
from warehouse.duckdb import DuckDBWarehouse, lock_holder
from warehouse.procedures import (
    coerce_args,
    list_procedures,
    load_procedure,
    parse_procedure,
    split_statements,
)

INGESTED_AT = datetime(2024, 6, 10, 8, 30, tzinfo=UTC)
D1, D2, D3 = date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)

USAGE_SCHEMA = pa.schema(
    [
        pa.field("usage_date", pa.date32()),
        pa.field("provider", pa.string()),
        pa.field("model", pa.string()),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("requests", pa.int64()),
        *LINEAGE_FIELDS,
    ]
)
PRICES_SCHEMA = pa.schema(
    [
        pa.field("provider", pa.string()),
        pa.field("model", pa.string()),
        pa.field("input_per_mtok", pa.float64()),
        pa.field("output_per_mtok", pa.float64()),
        *LINEAGE_FIELDS,
    ]
)
USAGE = TableRef("acme_dev", "demo_usage_raw")
PRICES = TableRef("acme_dev", "demo_prices")
DAILY_COST = TableRef("acme_dev", "demo_daily_cost")


def key(
    org: str = "acme",
    start: date = D1,
    end: date | None = None,
    pipeline: str = "openai_usage",
    credential: str = "cred_1",
) -> LineageKey:
    return LineageKey(org, pipeline, credential, start, end or start)


def lineage(k: LineageKey, run_dates: list[date], run_id: str = "run_1") -> dict[str, list]:
    n = len(run_dates)
    return {
        "x_org_slug": [k.org_slug] * n,
        "x_pipeline_id": [k.pipeline_id] * n,
        "x_credential_id": [k.credential_id] * n,
        "x_pipeline_run_date": run_dates,
        "x_run_id": [run_id] * n,
        "x_ingested_at": [INGESTED_AT] * n,
        "x_ingestion_date": [INGESTED_AT.date()] * n,
    }


def usage_rows(k: LineageKey, items: list[tuple], run_id: str = "run_1") -> pa.Table:
    """Rows of (usage_date, provider, model, input, output, requests) under lineage key k."""
    cols = [list(c) for c in zip(*items, strict=True)] if items else [[] for _ in range(6)]
    names = USAGE_SCHEMA.names[:6]
    data = dict(zip(names, cols, strict=True)) | lineage(k, cols[0], run_id)
    return pa.table(data, schema=USAGE_SCHEMA)


def price_rows(k: LineageKey, items: list[tuple]) -> pa.Table:
    cols = [list(c) for c in zip(*items, strict=True)]
    data = dict(zip(PRICES_SCHEMA.names[:4], cols, strict=True))
    return pa.table(data | lineage(k, [k.start_date] * len(items)), schema=PRICES_SCHEMA)


def all_rows(db_path: Path, table: TableRef, order: str = "ALL") -> list[tuple]:
    """Read back with a plain DuckDB connection, independent of the code under test."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            f'SELECT * FROM "{table.dataset}"."{table.table}" ORDER BY {order}'
        ).fetchall()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "warehouse.duckdb"  # parent dir does not exist yet


@pytest.fixture
def wh(db_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(db_path, lock_timeout=5)


@pytest.fixture
def usage(wh: DuckDBWarehouse) -> TableRef:
    wh.ensure_table(USAGE, USAGE_SCHEMA)
    return USAGE


# --- factory and tables -------------------------------------------------------------------


def test_from_url_picks_backend_by_scheme(tmp_path: Path) -> None:
    wh = from_url(f"duckdb://{tmp_path}/a/w.duckdb?lock_timeout=2.5")
    assert isinstance(wh, DuckDBWarehouse)
    assert wh.path == tmp_path / "a" / "w.duckdb" and wh.lock_timeout == 2.5
    wh.ping()
    assert (tmp_path / "a" / "w.duckdb").is_file()
    assert from_url(f"duckdb:///{tmp_path}/a/w.duckdb").path == wh.path  # four slashes
    assert type(from_url("bigquery://my-project?location=US")).__name__ == "BigQueryWarehouse"
    with pytest.raises(TerminalError, match="unknown warehouse URL scheme"):
        from_url("postgres://x/y")
    with pytest.raises(TerminalError, match="memory"):
        from_url("duckdb:///:memory:")


def test_ensure_table_maps_arrow_types(wh: DuckDBWarehouse, db_path: Path) -> None:
    schema = pa.schema(
        [
            pa.field("s", pa.string()),
            pa.field("i64", pa.int64()),
            pa.field("i32", pa.int32()),
            pa.field("f", pa.float64()),
            pa.field("b", pa.bool_()),
            pa.field("d", pa.date32()),
            pa.field("ts_utc", pa.timestamp("us", tz="UTC")),
            pa.field("ts", pa.timestamp("us")),
            pa.field("dec", pa.decimal128(12, 4)),
            pa.field("ls", pa.large_string()),
            pa.field("j", pa.json_()),
            *LINEAGE_FIELDS,
        ]
    )
    table = TableRef("acme_dev", "typed")
    wh.ensure_table(table, schema)
    wh.ensure_table(table, schema)  # idempotent

    with duckdb.connect(str(db_path), read_only=True) as con:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'acme_dev' AND table_name = 'typed'"
            ).fetchall()
        )
    assert {k: types[k] for k in schema.names[:11]} == {
        "s": "VARCHAR",
        "i64": "BIGINT",
        "i32": "INTEGER",
        "f": "DOUBLE",
        "b": "BOOLEAN",
        "d": "DATE",
        "ts_utc": "TIMESTAMP WITH TIME ZONE",
        "ts": "TIMESTAMP",
        "dec": "DECIMAL(12,4)",
        "ls": "VARCHAR",
        "j": "VARCHAR",
    }
    got = wh.table_schema(table)
    assert got is not None
    assert got.field("x_ingested_at").type == pa.timestamp("us", tz="UTC")
    assert not got.field("x_org_slug").nullable and got.field("s").nullable


def test_table_schema_round_trips_and_is_none_when_missing(wh: DuckDBWarehouse, usage) -> None:
    assert wh.table_schema(usage) == USAGE_SCHEMA
    assert wh.table_schema(TableRef("acme_dev", "nope")) is None
    assert wh.table_schema(TableRef("no_such_ds", "nope")) is None


def test_ensure_table_refuses_unsupported_type_and_missing_partition_field(
    wh: DuckDBWarehouse,
) -> None:
    with pytest.raises(TerminalError, match=r"'blob'.*unsupported Arrow type binary"):
        wh.ensure_table(TableRef("acme_dev", "t"), pa.schema([("blob", pa.binary())]), "", ())
    with pytest.raises(TerminalError, match="'x_ingestion_date' not in schema"):
        wh.ensure_table(TableRef("acme_dev", "t"), pa.schema([("a", pa.string())]))
    assert wh.table_schema(TableRef("acme_dev", "t")) is None


def test_add_missing_columns_adds_never_retypes(wh: DuckDBWarehouse, usage, db_path) -> None:
    wh.write_partition(usage, usage_rows(key(), [(D1, "openai", "gpt-4o", 1, 2, 3)]), key())
    wider = USAGE_SCHEMA.append(pa.field("region", pa.string())).append(
        pa.field("cached_tokens", pa.int64())
    )
    # An existing column given another type must be left alone.
    wider = wider.set(wider.get_field_index("requests"), pa.field("requests", pa.string()))

    assert wh.add_missing_columns(usage, wider) == ["region", "cached_tokens"]
    assert wh.add_missing_columns(usage, wider) == []
    got = wh.table_schema(usage)
    assert got.field("requests").type == pa.int64()
    assert got.names[-2:] == ["region", "cached_tokens"]
    assert all_rows(db_path, usage)[0][-2:] == (None, None)
    with pytest.raises(TerminalError, match="does not exist"):
        wh.add_missing_columns(TableRef("acme_dev", "nope"), wider)


def test_ensure_table_on_existing_table_adds_new_columns(wh: DuckDBWarehouse, usage) -> None:
    wh.ensure_table(usage, USAGE_SCHEMA.append(pa.field("region", pa.string())))
    assert wh.table_schema(usage).names[-1] == "region"


# --- replace writes -----------------------------------------------------------------------


def test_replace_is_idempotent_and_leaves_other_slices_alone(
    wh: DuckDBWarehouse, usage, db_path
) -> None:
    acme_d1 = usage_rows(
        key(),
        [(D1, "openai", "gpt-4o", 100, 10, 1), (D1, "openai", "gpt-4o-mini", 200, 20, 2)],
    )
    beta_d1 = usage_rows(key(org="beta"), [(D1, "openai", "gpt-4o", 999, 99, 9)])
    acme_d2 = usage_rows(key(start=D2), [(D2, "openai", "gpt-4o", 300, 30, 3)])
    acme_other_cred = usage_rows(key(credential="cred_2"), [(D1, "openai", "o1", 5, 5, 5)])
    writes = [
        (acme_d1, key()),
        (beta_d1, key(org="beta")),
        (acme_d2, key(start=D2)),
        (acme_other_cred, key(credential="cred_2")),
    ]
    for rows, k in writes:
        wh.write_partition(usage, rows, k)
    before = all_rows(db_path, usage)
    assert len(before) == 5

    result = wh.write_partition(usage, acme_d1, key())
    assert (result.table, result.rows_written, result.rows_deleted) == (str(usage), 2, 2)
    assert all_rows(db_path, usage) == before

    # A re-run with fewer source rows replaces exactly that slice.
    smaller = usage_rows(key(), [(D1, "openai", "gpt-4o", 111, 11, 1)], run_id="run_2")
    result = wh.write_partition(usage, smaller, key())
    assert (result.rows_written, result.rows_deleted) == (1, 2)
    after = all_rows(db_path, usage)
    assert len(after) == 4
    assert [r for r in after if r[10] == "run_2"] == [tuple(smaller.to_pylist()[0].values())]

    def in_slice(r: tuple) -> bool:
        return r[6:10] == ("acme", "openai_usage", "cred_1", D1)

    assert [r for r in after if not in_slice(r)] == [r for r in before if not in_slice(r)]


def test_replace_over_a_date_range_deletes_every_day_in_it(
    wh: DuckDBWarehouse, usage, db_path
) -> None:
    three_days = usage_rows(
        key(start=D1, end=D3),
        [(d, "openai", "gpt-4o", 1, 1, 1) for d in (D1, D2, D3)],
    )
    wh.write_partition(usage, three_days, key(start=D1, end=D3))
    two_days = usage_rows(key(start=D1, end=D2), [(D1, "openai", "gpt-4o", 7, 7, 7)])
    result = wh.write_partition(usage, two_days, key(start=D1, end=D2))
    assert (result.rows_written, result.rows_deleted) == (1, 2)
    assert [(r[0], r[3]) for r in all_rows(db_path, usage)] == [(D1, 7), (D3, 1)]


def test_replace_with_no_rows_empties_the_slice(wh: DuckDBWarehouse, usage, db_path) -> None:
    wh.write_partition(usage, usage_rows(key(), [(D1, "a", "m", 1, 1, 1)]), key())
    result = wh.write_partition(usage, usage_rows(key(), []), key())
    assert (result.rows_written, result.rows_deleted) == (0, 1)
    assert all_rows(db_path, usage) == []


def test_rows_outside_the_key_are_refused(wh: DuckDBWarehouse, usage, db_path) -> None:
    rows = usage_rows(key(org="beta"), [(D1, "openai", "gpt-4o", 1, 1, 1)])
    with pytest.raises(TerminalError, match="x_org_slug"):
        wh.write_partition(usage, rows, key())
    late = usage_rows(key(start=D2), [(D2, "openai", "gpt-4o", 1, 1, 1)])
    with pytest.raises(TerminalError, match="x_pipeline_run_date"):
        wh.write_partition(usage, late, key(start=D1))
    assert all_rows(db_path, usage) == []


def test_missing_lineage_columns_are_rejected(wh: DuckDBWarehouse, usage, db_path) -> None:
    good = usage_rows(key(), [(D1, "openai", "gpt-4o", 1, 1, 1)])
    wh.write_partition(usage, good, key())
    bad = good.drop_columns(["x_run_id", "x_ingestion_date"])
    with pytest.raises(TerminalError, match=r"lack lineage column.*x_run_id, x_ingestion_date"):
        wh.write_partition(usage, bad, key())
    assert len(all_rows(db_path, usage)) == 1


def test_failed_insert_rolls_back_the_delete(wh: DuckDBWarehouse, usage, db_path) -> None:
    old = usage_rows(key(), [(D1, "openai", "gpt-4o", 1, 2, 3), (D1, "openai", "o1", 4, 5, 6)])
    wh.write_partition(usage, old, key())
    before = all_rows(db_path, usage)
    # Same key, so the DELETE matches both rows; then the text can't be cast into BIGINT.
    bad = old.set_column(
        old.schema.get_field_index("input_tokens"),
        "input_tokens",
        pa.array(["12", "lots"]),
    )
    with pytest.raises(TerminalError, match=r"write to acme_dev.demo_usage_raw failed.*lots"):
        wh.write_partition(usage, bad, key())
    assert all_rows(db_path, usage) == before


def test_write_to_missing_table_is_terminal(wh: DuckDBWarehouse) -> None:
    rows = usage_rows(key(), [(D1, "openai", "gpt-4o", 1, 1, 1)])
    with pytest.raises(TerminalError, match="does not exist; call ensure_table"):
        wh.write_partition(TableRef("acme_dev", "nope"), rows, key())


def test_bad_identifiers_are_refused_before_sql(wh: DuckDBWarehouse, usage, db_path) -> None:
    with pytest.raises(InvalidIdentifierError, match="invalid dataset name"):
        TableRef('acme"; DROP', "t")
    with pytest.raises(InvalidIdentifierError, match="invalid dataset name 'Acme-Dev'"):
        wh.ensure_dataset("Acme-Dev")
    rows = usage_rows(key(), [(D1, "openai", "gpt-4o", 1, 1, 1)])
    evil = rows.rename_columns(['x" text); --', *rows.column_names[1:]])
    with pytest.raises(InvalidIdentifierError, match="invalid column name"):
        wh.write_partition(usage, evil, key())
    with pytest.raises(InvalidIdentifierError):
        wh.ensure_table(TableRef("acme_dev", "t2"), pa.schema([("Bad Name", pa.string())]), "", ())
    assert all_rows(db_path, usage) == []


# --- merge writes -------------------------------------------------------------------------

ACCOUNTS = TableRef("acme_dev", "accounts")
ACCOUNT_SCHEMA = pa.schema(
    [pa.field("account_id", pa.string()), pa.field("plan", pa.string()), *LINEAGE_FIELDS]
)


def account_rows(k: LineageKey, items: list[tuple[str, str]], run_id: str = "r1") -> pa.Table:
    data = {"account_id": [i[0] for i in items], "plan": [i[1] for i in items]}
    return pa.table(data | lineage(k, [k.start_date] * len(items), run_id), schema=ACCOUNT_SCHEMA)


def test_merge_upserts_by_key_within_the_org(wh: DuckDBWarehouse, db_path) -> None:
    wh.ensure_table(ACCOUNTS, ACCOUNT_SCHEMA)
    acme, beta = key(), key(org="beta")
    wh.write_partition(ACCOUNTS, account_rows(acme, [("a1", "free"), ("a2", "free")]), acme)
    wh.write_partition(ACCOUNTS, account_rows(beta, [("a2", "free")]), beta)

    later = key(start=D2)
    incoming = account_rows(later, [("a2", "pro"), ("a3", "team")], run_id="r2")
    result = wh.write_partition(ACCOUNTS, incoming, later, "merge", ("account_id",))
    assert (result.rows_written, result.rows_deleted) == (2, 1)
    rows = {(r[2], r[0]): (r[1], r[6]) for r in all_rows(db_path, ACCOUNTS)}
    assert rows == {
        ("acme", "a1"): ("free", "r1"),
        ("acme", "a2"): ("pro", "r2"),
        ("acme", "a3"): ("team", "r2"),
        ("beta", "a2"): ("free", "r1"),  # same key, other org: untouched
    }
    # Merging the same rows again changes nothing.
    wh.write_partition(ACCOUNTS, incoming, later, "merge", ("account_id",))
    assert len(all_rows(db_path, ACCOUNTS)) == 4


def test_merge_arguments_are_checked(wh: DuckDBWarehouse, db_path) -> None:
    wh.ensure_table(ACCOUNTS, ACCOUNT_SCHEMA)
    rows = account_rows(key(), [("a1", "free")])
    with pytest.raises(TerminalError, match="at least one merge key"):
        wh.write_partition(ACCOUNTS, rows, key(), "merge")
    with pytest.raises(TerminalError, match="merge key 'nope' not in rows"):
        wh.write_partition(ACCOUNTS, rows, key(), "merge", ("nope",))
    with pytest.raises(InvalidIdentifierError):
        wh.write_partition(ACCOUNTS, rows, key(), "merge", ("a; b",))
    dupes = account_rows(key(), [("a1", "free"), ("a1", "pro")])
    with pytest.raises(TerminalError, match="duplicate merge keys"):
        wh.write_partition(ACCOUNTS, dupes, key(), "merge", ("account_id",))
    with pytest.raises(TerminalError, match="another org"):
        wh.write_partition(ACCOUNTS, rows, key(org="beta"), "merge", ("account_id",))
    with pytest.raises(TerminalError, match="unknown write mode 'upsert'"):
        wh.write_partition(ACCOUNTS, rows, key(), "upsert")  # type: ignore[arg-type]
    assert all_rows(db_path, ACCOUNTS) == []


# --- query --------------------------------------------------------------------------------


def test_query_googlesql_with_params_and_backquoted_names(wh: DuckDBWarehouse, usage) -> None:
    wh.write_partition(
        usage,
        usage_rows(
            key(start=D1, end=D2),
            [(D1, "openai", "gpt-4o", 100, 10, 1), (D2, "openai", "gpt-4o", 300, 30, 3)],
        ),
        key(start=D1, end=D2),
    )
    result = wh.query(
        "SELECT usage_date, SAFE_CAST(input_tokens AS STRING) AS tokens,"
        " SAFE_DIVIDE(output_tokens, 0) AS ratio, FORMAT_DATE('%Y-%m', usage_date) AS month"
        " FROM `acme_dev.demo_usage_raw`"
        " WHERE x_org_slug = @org AND usage_date >= @since ORDER BY usage_date",
        {"org": "acme", "since": D2, "unused": 1},
    )
    assert isinstance(result, pa.Table)
    assert result.to_pylist() == [
        {"usage_date": D2, "tokens": "300", "ratio": None, "month": "2024-06"}
    ]


def test_query_errors_are_terminal_and_clear(wh: DuckDBWarehouse, usage) -> None:
    with pytest.raises(TerminalError, match=r"missing parameter.*org"):
        wh.query("SELECT * FROM `acme_dev.demo_usage_raw` WHERE x_org_slug = @org")
    with pytest.raises(TerminalError, match=r"query failed: .*nope"):
        wh.query("SELECT * FROM `acme_dev.nope`")
    with pytest.raises(TerminalError, match="cannot transpile"):
        wh.query("SELECT FROM WHERE (")
    with pytest.raises(TerminalError, match="one statement"):
        wh.query("SELECT 1; SELECT 2")
    with pytest.raises(TerminalError, match=r"cannot transpile.*APPROX_TOP_K"):
        wh.query("SELECT APPROX_TOP_COUNT(provider, 2) FROM `acme_dev.demo_usage_raw`")


def test_query_numeric_has_bigquery_precision(wh: DuckDBWarehouse) -> None:
    out = wh.query("SELECT CAST(@v AS NUMERIC) AS n", {"v": "12345678901234567890.123456789"})
    assert out["n"][0].as_py() == Decimal("12345678901234567890.123456789")


# --- procedures ---------------------------------------------------------------------------


def load_demo_sources(wh: DuckDBWarehouse) -> LineageKey:
    wh.ensure_table(USAGE, USAGE_SCHEMA)
    wh.ensure_table(PRICES, PRICES_SCHEMA)
    k = key(start=D1, end=D2)
    wh.write_partition(
        USAGE,
        usage_rows(
            k,
            [
                (D1, "openai", "gpt-4o", 600_000, 150_000, 10),
                (D1, "openai", "gpt-4o", 400_000, 50_000, 5),  # same day: summed
                (D1, "anthropic", "claude", 400_000, 100_000, 7),
                (D2, "openai", "gpt-4o", 2_000_000, 0, 1),
                (D2, "mystery", "unpriced", 5, 5, 5),  # no price: no cost row
            ],
        ),
        k,
    )
    wh.write_partition(  # outside the date range
        USAGE, usage_rows(key(start=D3), [(D3, "openai", "gpt-4o", 1, 1, 1)]), key(start=D3)
    )
    beta = key(org="beta")  # another org's usage and prices must not leak in
    wh.write_partition(USAGE, usage_rows(beta, [(D1, "openai", "gpt-4o", 9, 9, 9)]), beta)
    wh.write_partition(PRICES, price_rows(beta, [("openai", "gpt-4o", 1000.0, 1000.0)]), beta)
    prices = key(pipeline="prices")
    wh.write_partition(
        PRICES,
        price_rows(prices, [("openai", "gpt-4o", 2.5, 10.0), ("anthropic", "claude", 3.0, 15.0)]),
        prices,
    )
    return k


PROC_ARGS = {
    "p_start_date": "2024-06-01",  # strings are coerced to DATE
    "p_end_date": D2,
    "p_org_slug": "acme",
    "p_pipeline_id": "demo_cost",
    "p_credential_id": "cred_1",
    "p_run_id": "run_9",
}


def test_sp_demo_daily_cost_computes_costs_idempotently(wh: DuckDBWarehouse, db_path) -> None:
    load_demo_sources(wh)
    wh.call_procedure("acme_dev", "sp_demo_daily_cost", PROC_ARGS)
    first = all_rows(db_path, DAILY_COST, order="usage_date, provider")
    wh.call_procedure("acme_dev", "sp_demo_daily_cost", PROC_ARGS)
    second = all_rows(db_path, DAILY_COST, order="usage_date, provider")

    # Costs by hand: (input * in_price + output * out_price) / 1e6.
    # D1 openai: (1,000,000 * 2.5 + 200,000 * 10) / 1e6 = 4.5
    # D1 anthropic: (400,000 * 3 + 100,000 * 15) / 1e6 = 2.7
    # D2 openai: (2,000,000 * 2.5 + 0) / 1e6 = 5.0
    got = [(r[0], r[1], r[2], r[3], r[4], r[5], round(r[6], 9)) for r in second]
    assert got == [
        (D1, "anthropic", "claude", 400_000, 100_000, 7, 2.7),
        (D1, "openai", "gpt-4o", 1_000_000, 200_000, 15, 4.5),
        (D2, "openai", "gpt-4o", 2_000_000, 0, 1, 5.0),
    ]
    today = datetime.now(UTC).date()
    for r in second:
        assert r[7:12] == ("acme", "demo_cost", "cred_1", r[0], "run_9")
        assert r[13] == today and r[12].tzinfo is not None
    assert [r[:12] for r in first] == [r[:12] for r in second]


def test_sp_demo_daily_cost_works_through_from_url(tmp_path: Path) -> None:
    wh = from_url(f"duckdb://{tmp_path}/w.duckdb")
    load_demo_sources(wh)
    wh.call_procedure("acme_dev", "sp_demo_daily_cost", PROC_ARGS)
    out = wh.query(
        "SELECT SUM(cost_usd) AS total FROM `acme_dev.demo_daily_cost` WHERE x_run_id = @r",
        {"r": "run_9"},
    )
    assert round(out["total"][0].as_py(), 9) == 12.2


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("sp_nope", {}, r"unknown procedure 'sp_nope' \(known: .*sp_demo_daily_cost"),
        ("sp_demo_daily_cost", {**PROC_ARGS, "p_extra": 1}, "unknown argument.*p_extra"),
        (
            "sp_demo_daily_cost",
            {k: v for k, v in PROC_ARGS.items() if k not in ("p_run_id", "p_end_date")},
            "missing argument.*p_end_date, p_run_id",
        ),
        (
            "sp_demo_daily_cost",
            {**PROC_ARGS, "p_start_date": "June 1st"},
            "'p_start_date' must be DATE, got 'June 1st'",
        ),
        ("sp_demo_daily_cost", {**PROC_ARGS, "p_org_slug": 7}, "'p_org_slug' must be STRING"),
    ],
)
def test_procedure_bad_calls_are_terminal_and_write_nothing(
    wh: DuckDBWarehouse, name: str, args: dict, message: str
) -> None:
    load_demo_sources(wh)
    with pytest.raises(TerminalError, match=message):
        wh.call_procedure("acme_dev", name, args)
    assert wh.table_schema(DAILY_COST) is None


def test_procedure_bad_dataset_is_refused(wh: DuckDBWarehouse) -> None:
    with pytest.raises(InvalidIdentifierError, match="invalid dataset name"):
        wh.call_procedure("acme`; DROP TABLE x; --", "sp_demo_daily_cost", PROC_ARGS)
    with pytest.raises(InvalidIdentifierError, match="invalid procedure name"):
        wh.call_procedure("acme_dev", "../secrets", {})


def test_failing_procedure_statement_rolls_back_earlier_ones(wh: DuckDBWarehouse, db_path) -> None:
    # Sources missing: the CREATE TABLE runs, the INSERT fails, and the whole call rolls back.
    wh.ensure_dataset("acme_dev")
    with pytest.raises(TerminalError, match="procedure sp_demo_daily_cost statement 3 failed"):
        wh.call_procedure("acme_dev", "sp_demo_daily_cost", PROC_ARGS)
    assert wh.table_schema(DAILY_COST) is None


def test_bootstrap_procedures_checks_every_file(wh: DuckDBWarehouse, tmp_path: Path) -> None:
    assert "sp_demo_daily_cost" in wh.bootstrap_procedures("acme_dev")
    assert wh.bootstrap_procedures("acme_dev") == list_procedures()
    bad_dir = tmp_path / "sql"
    bad_dir.mkdir()
    (bad_dir / "sp_bad.sql").write_text("-- procedure: sp_bad(p DATE)\nSELECT @q;\n")
    with pytest.raises(TerminalError, match=r"undeclared parameter.*q"):
        DuckDBWarehouse(tmp_path / "x.duckdb", sql_dir=bad_dir).bootstrap_procedures("acme_dev")


def test_procedure_file_parsing() -> None:
    proc = load_procedure("sp_demo_daily_cost")
    assert proc.params[0] == ("p_start_date", "DATE") and len(proc.params) == 6
    assert len(proc.statements) == 3
    rendered = proc.render("acme_dev")
    assert all("{dataset}" not in s and "`acme_dev." in s for s in rendered)
    with pytest.raises(InvalidIdentifierError):
        proc.render("acme_dev.other")

    text = (
        "-- procedure: sp_x(p_a STRING, p_n int64)\n"
        "SELECT ';' AS a -- x; y\n;\n-- only\n;SELECT @p_n"
    )
    parsed = parse_procedure(text)
    assert parsed.params == [("p_a", "STRING"), ("p_n", "INT64")]
    assert parsed.statements == ["SELECT ';' AS a -- x; y", "SELECT @p_n"]
    assert split_statements("SELECT 1;;SELECT 2;") == ["SELECT 1", "SELECT 2"]
    with pytest.raises(TerminalError, match="must start with"):
        parse_procedure("SELECT 1")
    with pytest.raises(TerminalError, match="unsupported type 'TEXT'"):
        parse_procedure("-- procedure: sp_x(p_a TEXT)\nSELECT 1")
    with pytest.raises(TerminalError, match="declares 'sp_y'"):
        parse_procedure("-- procedure: sp_y()\nSELECT 1", expected_name="sp_x")


def test_coerce_args_converts_declared_types() -> None:
    proc = parse_procedure(
        "-- procedure: sp_t(d DATE, i INT64, f FLOAT64, n NUMERIC, ts TIMESTAMP, b BOOL, s STRING)"
        "\nSELECT 1"
    )
    got = coerce_args(
        proc,
        {
            "d": "2024-06-01",
            "i": "42",
            "f": 1,
            "n": 0.1,
            "ts": "2024-06-01T10:00:00",
            "b": "true",
            "s": None,
        },
    )
    assert got == {
        "d": date(2024, 6, 1),
        "i": 42,
        "f": 1.0,
        "n": Decimal("0.1"),
        "ts": datetime(2024, 6, 1, 10, tzinfo=UTC),
        "b": True,
        "s": None,
    }
    with pytest.raises(TerminalError, match="'d' must be DATE"):
        coerce_args(proc, {**got, "d": datetime(2024, 6, 1, 10)})
    with pytest.raises(TerminalError, match="'i' must be INT64"):
        coerce_args(proc, {**got, "i": True})


# --- locking ------------------------------------------------------------------------------


@contextmanager
def holding(code: str, path: Path) -> Iterator[subprocess.Popen]:
    """A child process that holds a lock (printed 'held') until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.stdin:
            holder.stdin.close()  # the holder exits when its stdin closes
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


FLOCK_HOLDER = (
    "import fcntl, sys\n"
    "f = open(sys.argv[1], 'a')\n"
    "fcntl.flock(f, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)
DUCKDB_HOLDER = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_write_times_out_while_another_process_holds_the_lock(
    wh: DuckDBWarehouse, usage, db_path
) -> None:
    rows = usage_rows(key(), [(D1, "openai", "gpt-4o", 1, 1, 1)])
    impatient = DuckDBWarehouse(db_path, lock_timeout=0.5)
    with holding(FLOCK_HOLDER, wh.lock_path):
        start = time.monotonic()
        with pytest.raises(WarehouseLockTimeout, match=r"lock .* busy") as info:
            impatient.write_partition(usage, rows, key())
        assert 0.5 <= time.monotonic() - start < 3
        assert isinstance(info.value, TransientError)
    assert impatient.write_partition(usage, rows, key()).rows_written == 1
    assert len(all_rows(db_path, usage)) == 1


READ_ONLY_HOLDER = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_the_lock_holder_is_found_in_proc_locks_when_the_error_does_not_name_it(
    wh: DuckDBWarehouse, usage, db_path
) -> None:
    wh.ping()  # the file exists, so a read-only connection can open it
    with holding(READ_ONLY_HOLDER, db_path) as holder:
        assert lock_holder("IO Error: Could not set lock on file", db_path) == (
            holder.pid,
            Path(sys.executable).resolve().name,
        )
    assert lock_holder("IO Error: Could not set lock on file", db_path) == (None, None)


def test_duckdb_own_lock_conflict_is_a_lock_timeout(wh: DuckDBWarehouse, usage, db_path) -> None:
    # Another program (not using our lock file) has the database open for writing.
    waits: list[LockWait] = []
    impatient = DuckDBWarehouse(db_path, lock_timeout=0.5, on_lock_wait=waits.append)
    with holding(DUCKDB_HOLDER, db_path) as holder, pytest.raises(WarehouseLockTimeout) as info:
        impatient.query("SELECT 1")
    assert f"query: database {db_path} is held by pid {holder.pid} (" in str(info.value)
    impatient.ping()
    # Told when the wait began and when it was given up, with the holder's pid.
    assert [(w.holder_pid, w.acquired) for w in waits] == [(holder.pid, False)] * 2
    # How long it waited is reported, not bounded here: timings belong in `make bench`.
    assert waits[0].waited_seconds is None and (waits[1].waited_seconds or 0) > 0
    assert waits[0].what == "query" and waits[0].since.tzinfo is not None


def test_concurrent_writers_in_one_process_are_serialised(
    wh: DuckDBWarehouse, usage, db_path
) -> None:
    days = [date(2024, 6, d) for d in range(1, 9)]

    def write(day: date) -> int:
        k = key(start=day)
        return wh.write_partition(usage, usage_rows(k, [(day, "a", "m", 1, 1, 1)]), k).rows_written

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(write, days)) == [1] * len(days)
    assert [r[0] for r in all_rows(db_path, usage)] == days


def test_connection_is_not_kept_between_operations(wh: DuckDBWarehouse, usage, db_path) -> None:
    wh.write_partition(usage, usage_rows(key(), [(D1, "a", "m", 1, 1, 1)]), key())
    # Another process can open the file right after a call returned.
    out = subprocess.run(
        [sys.executable, "-c", DUCKDB_HOLDER.replace("sys.stdin.read()\n", ""), str(db_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and out.stdout.strip() == "held"

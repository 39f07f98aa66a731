"""lineage.stamp: the seven x_* columns, their exact types, and the date range guard."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from pipeline.runs.lineage import stamp
from pipeline_ops_core.errors import TerminalError
from warehouse.base import LINEAGE_FIELDS, LINEAGE_NAMES, LineageKey, TableRef

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
KEY = LineageKey("acme", "demo_pipe", "main", D1, D2)
AT = datetime(2026, 1, 4, 23, 59, 59, 123456, tzinfo=UTC)
RUN = "run-123"


def rows(**extra: pa.Array) -> pa.Table:
    base = {
        "usage_date": pa.array([D1, D2, D2], pa.date32()),
        "tokens": pa.array([1, 2, 3], pa.int64()),
    }
    return pa.table({**base, **extra})


def test_all_seven_columns_with_the_exact_types() -> None:
    out = stamp(rows(), KEY, RUN, AT)

    assert out.column_names == ["usage_date", "tokens", *LINEAGE_NAMES]
    assert list(out.schema)[2:] == list(LINEAGE_FIELDS)  # names, types and NOT NULL
    data = out.to_pydict()
    assert data["tokens"] == [1, 2, 3]
    assert data["x_org_slug"] == ["acme"] * 3
    assert data["x_pipeline_id"] == ["demo_pipe"] * 3
    assert data["x_credential_id"] == ["main"] * 3
    assert data["x_pipeline_run_date"] == [D1] * 3  # no date_column: the run's start date
    assert data["x_run_id"] == [RUN] * 3
    assert data["x_ingested_at"] == [AT] * 3
    assert data["x_ingestion_date"] == [date(2026, 1, 4)] * 3


def test_x_columns_a_processor_set_are_overridden() -> None:
    forged = rows(
        x_org_slug=pa.array(["globex"] * 3),
        x_run_id=pa.array([7, 8, 9], pa.int64()),
        x_ingested_at=pa.array(["yesterday"] * 3),
        x_pipeline_run_date=pa.array([D3] * 3, pa.date32()),
    )

    out = stamp(forged, KEY, RUN, AT)

    assert out.column_names == ["usage_date", "tokens", *LINEAGE_NAMES]
    assert list(out.schema)[2:] == list(LINEAGE_FIELDS)
    data = out.to_pydict()
    assert data["x_org_slug"] == ["acme"] * 3
    assert data["x_run_id"] == [RUN] * 3
    assert data["x_ingested_at"] == [AT] * 3
    assert data["x_pipeline_run_date"] == [D1] * 3


def test_date_column_sets_each_rows_run_date() -> None:
    out = stamp(rows(), KEY, RUN, AT, date_column="usage_date")
    assert out.column("x_pipeline_run_date").to_pylist() == [D1, D2, D2]
    assert out.schema.field("x_pipeline_run_date") == LINEAGE_FIELDS[3]


def test_a_date_column_of_timestamps_is_cast_to_dates() -> None:
    stamps = pa.array(
        [datetime(2026, 1, 1, 5, tzinfo=UTC), datetime(2026, 1, 2, 23, tzinfo=UTC)],
        pa.timestamp("us", tz="UTC"),
    )
    out = stamp(pa.table({"ts": stamps}), KEY, RUN, AT, date_column="ts")
    assert out.column("x_pipeline_run_date").to_pylist() == [D1, D2]
    assert out.schema.field("x_pipeline_run_date").type == pa.date32()


@pytest.mark.parametrize(
    "dates",
    [
        [D1, D3],  # after the range
        [date(2025, 12, 31), D1],  # before it
        [D3, D3],
    ],
)
def test_rows_outside_the_keys_range_are_refused(dates: list[date]) -> None:
    table = pa.table({"usage_date": pa.array(dates, pa.date32())})
    with pytest.raises(TerminalError, match=r"fall outside the run's range 2026-01-01..2026-01-02"):
        stamp(table, KEY, RUN, AT, date_column="usage_date")


def test_null_dates_are_refused() -> None:
    table = pa.table({"usage_date": pa.array([D1, None], pa.date32())})
    with pytest.raises(TerminalError, match="null values"):
        stamp(table, KEY, RUN, AT, date_column="usage_date")


def test_a_missing_date_column_is_refused() -> None:
    with pytest.raises(TerminalError, match="'day' is not a column"):
        stamp(rows(), KEY, RUN, AT, date_column="day")


def test_the_date_column_can_not_be_a_lineage_column() -> None:
    # x_* columns are dropped before stamping, so a processor can't smuggle its own
    # run date in through them.
    table = pa.table({"x_pipeline_run_date": pa.array([D1], pa.date32())})
    with pytest.raises(TerminalError, match="is not a column"):
        stamp(table, KEY, RUN, AT, date_column="x_pipeline_run_date")


def test_no_rows_still_get_the_full_schema() -> None:
    empty = rows().slice(0, 0)
    out = stamp(empty, KEY, RUN, AT, date_column="usage_date")
    assert out.num_rows == 0
    assert list(out.schema)[2:] == list(LINEAGE_FIELDS)


def test_a_look_back_write_replaces_from_its_own_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.runs.lineage import make_writer
    from tests.support.genai import ListLog
    from warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    run_key = LineageKey("acme", "demo_pipe", "main", D2, D2)

    def write(day_list: list[date], run: str, start_date: date | None = None) -> None:
        writer = make_writer(warehouse, "acme_dev", run_key, run, lambda: AT, ListLog())
        table = pa.table({"day": pa.array(day_list, pa.date32())})
        writer("t", table, date_column="day", start_date=start_date)

    write([D2], "run-1")
    with pytest.raises(TerminalError, match="fall outside the run's range"):
        write([D1, D2], "run-2")  # without a look-back, D1 is not the run's to replace
    write([D1, D2], "run-3", start_date=D1)
    write([D1, D2], "run-4", start_date=D1)  # a re-run replaces both days: no duplicates
    got = warehouse.query("SELECT day, x_run_id FROM `acme_dev.t` ORDER BY day").to_pylist()
    assert [(r["day"], r["x_run_id"]) for r in got] == [(D1, "run-4"), (D2, "run-4")]
    # A later start than the run's never narrows the replaced range.
    write([D2], "run-5", start_date=D2 + (D2 - D1))
    assert warehouse.query("SELECT COUNT(*) AS n FROM `acme_dev.t`").column("n")[0].as_py() == 2


def batches(*tables: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(
        tables[0].schema, [b for t in tables for b in t.to_batches()]
    )


def test_a_streamed_write_stamps_every_batch_and_replaces_like_a_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.runs.lineage import make_writer
    from tests.support.genai import ListLog
    from warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    day = pa.table({"day": pa.array([D1, D2], pa.date32()), "n": pa.array([1, 2], pa.int64())})
    other = pa.table({"day": pa.array([D2], pa.date32()), "n": pa.array([3], pa.int64())})

    def write(run: str) -> tuple[int, int]:
        writer = make_writer(warehouse, "acme_dev", KEY, run, lambda: AT, ListLog())
        result = writer("t", batches(day, other), date_column="day")
        return result.rows_written, result.rows_deleted

    assert write("run-1") == (3, 0)
    assert write("run-2") == (3, 3)  # a re-run replaces the slice: no duplicates
    got = warehouse.query("SELECT * FROM `acme_dev.t` ORDER BY n").to_pylist()
    assert [(r["day"], r["n"]) for r in got] == [(D1, 1), (D2, 2), (D2, 3)]
    assert {(r["x_org_slug"], r["x_run_id"], r["x_ingested_at"]) for r in got} == {
        ("acme", "run-2", AT)
    }
    assert [r["x_pipeline_run_date"] for r in got] == [D1, D2, D2]


def test_a_streamed_batch_outside_the_run_rolls_the_whole_write_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.runs.lineage import make_writer
    from tests.support.genai import ListLog
    from warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    good = pa.table({"day": pa.array([D1, D2], pa.date32())})
    writer = make_writer(warehouse, "acme_dev", KEY, "run-1", lambda: AT, ListLog())
    writer("t", batches(good), date_column="day")
    late = pa.table({"day": pa.array([D3], pa.date32())})  # the second batch is out of range
    writer = make_writer(warehouse, "acme_dev", KEY, "run-2", lambda: AT, ListLog())
    with pytest.raises(TerminalError, match="fall outside the run's range"):
        writer("t", batches(good, late), date_column="day")
    got = warehouse.query("SELECT day, x_run_id FROM `acme_dev.t` ORDER BY day").to_pylist()
    assert [(r["day"], r["x_run_id"]) for r in got] == [(D1, "run-1"), (D2, "run-1")]


def test_a_streamed_merge_is_refused_before_anything_is_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.runs.lineage import make_writer
    from tests.support.genai import ListLog
    from warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    writer = make_writer(warehouse, "acme_dev", KEY, "run-1", lambda: AT, ListLog())
    rows = pa.table({"k": pa.array(["a"], pa.string())})
    with pytest.raises(TerminalError, match="a merge needs all its rows at once"):
        writer("t", batches(rows), mode="merge", merge_keys=("k",))
    assert warehouse.table_schema(TableRef("acme_dev", "t")) is None

"""The BigQuery backend's pure parts, with no server: URL, types, SQL text, job names,
error translation, credentials and the lineage writer's job contexts.

Everything that needs BigQuery itself runs against the emulator in tests/integration.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions as gexc

from pipeline.runs.lineage import make_writer
from pipeline_ops_core.errors import TerminalError, TransientError
from warehouse import from_url
from warehouse.base import LINEAGE_FIELDS, JobContext, LineageKey, TableRef, WriteResult
from warehouse.bigquery.backend import BigQueryWarehouse
from warehouse.bigquery.client import BigQueryConfig, service_account_credentials
from warehouse.bigquery.errors import translate
from warehouse.bigquery.jobs import STAGING_TTL, WriteJobs
from warehouse.bigquery.sql import (
    call_procedure,
    create_procedure,
    param_names,
    procedure_body,
    replace_script,
    strip_param_markers,
)
from warehouse.bigquery.types import bq_type_name, sql_literal
from warehouse.bigquery.write import arrow_field, schema_fields, staging_rows, staging_table
from warehouse.procedures import load_procedure, parse_procedure
from warehouse.schemas import retype_conflicts

KEY = LineageKey("acme", "demo", "main", date(2026, 1, 1), date(2026, 1, 2))
USAGE = TableRef("acme_dev", "demo_usage_raw")

# --- URL -----------------------------------------------------------------------------------


def test_url_needs_a_location_and_knows_the_emulator_endpoint() -> None:
    wh = from_url("bigquery://my-proj?location=EU")
    assert isinstance(wh, BigQueryWarehouse)
    assert (wh.project, wh.location, wh.config.emulator) == ("my-proj", "EU", False)
    emu = BigQueryConfig.from_url("bigquery://test-proj?location=US&endpoint=http://127.0.0.1:9")
    assert emu.emulator and emu.endpoint == "http://127.0.0.1:9"
    for bad, message in [
        ("bigquery://my-proj", "needs a location"),
        ("bigquery://my-proj?location=", "needs a location"),
        ("bigquery://my-proj?location=US&region=x", "unknown BigQuery URL option"),
        ("bigquery://My_Proj?location=US", "invalid BigQuery project id"),
        ("bigquery:///ds?location=US", "expected bigquery://PROJECT"),
        ("bigquery://my-proj?location=US&endpoint=file:///x", "http"),
    ]:
        with pytest.raises(TerminalError, match=message):
            from_url(bad)


# --- types ---------------------------------------------------------------------------------


def test_arrow_schemas_map_to_bigquery_columns_and_back() -> None:
    schema = pa.schema(
        [
            pa.field("s", pa.string()),
            pa.field("i", pa.int64()),
            pa.field("i32", pa.int32()),
            pa.field("f", pa.float64()),
            pa.field("b", pa.bool_()),
            pa.field("d", pa.date32()),
            pa.field("ts", pa.timestamp("us", tz="UTC")),
            pa.field("dt", pa.timestamp("us")),
            pa.field("n", pa.decimal128(38, 9)),
            pa.field("big", pa.decimal128(38, 20)),
            pa.field("j", pa.json_()),
            *LINEAGE_FIELDS,
        ]
    )
    fields = schema_fields(schema)
    assert [(f.name, f.field_type, f.mode) for f in fields[:11]] == [
        ("s", "STRING", "NULLABLE"),
        ("i", "INT64", "NULLABLE"),
        ("i32", "INT64", "NULLABLE"),
        ("f", "FLOAT64", "NULLABLE"),
        ("b", "BOOL", "NULLABLE"),
        ("d", "DATE", "NULLABLE"),
        ("ts", "TIMESTAMP", "NULLABLE"),
        ("dt", "DATETIME", "NULLABLE"),
        ("n", "NUMERIC", "NULLABLE"),
        ("big", "BIGNUMERIC", "NULLABLE"),
        ("j", "STRING", "NULLABLE"),
    ]
    assert {f.mode for f in fields[11:]} == {"REQUIRED"}
    assert [arrow_field(f) for f in fields[11:]] == list(LINEAGE_FIELDS)
    with pytest.raises(TerminalError, match=r"'blob'.*unsupported Arrow type binary"):
        bq_type_name(pa.field("blob", pa.binary()))


def test_staging_tables_are_nullable_and_expire_and_rows_get_exact_types() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    table = staging_table("p.acme_dev._po_stg_x", pa.schema(LINEAGE_FIELDS), now)
    assert table.expires == now + STAGING_TTL and timedelta(hours=1) <= STAGING_TTL
    assert {f.mode for f in table.schema} == {"NULLABLE"}
    rows = pa.table(
        {
            "i": pa.array([1], pa.int32()),
            "j": pa.array(['{"a": 1}'], pa.json_()),
            "n": pa.array([Decimal("1.5")], pa.decimal128(10, 2)),
            "ls": pa.array(["x"], pa.large_string()),
        }
    )
    staged = staging_rows(rows)
    assert staged.schema.types == [pa.int64(), pa.string(), pa.decimal128(38, 9), pa.string()]
    assert staged.to_pylist() == [{"i": 1, "j": '{"a": 1}', "n": Decimal("1.5"), "ls": "x"}]


def test_literals_for_the_emulator_escape_everything() -> None:
    assert sql_literal("it's \\ a\nb\x00", "STRING") == "'it\\'s \\\\ a\\nb\\u0000'"
    assert sql_literal(date(2026, 1, 2), "DATE") == "DATE '2026-01-02'"
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert sql_literal(stamp, "TIMESTAMP") == "TIMESTAMP '2026-01-02T03:04:05+00:00'"
    assert sql_literal(Decimal("1.50"), "NUMERIC") == "NUMERIC '1.50'"
    assert sql_literal(float("nan"), "FLOAT64") == "CAST('nan' AS FLOAT64)"
    assert sql_literal(None, "INT64") == "CAST(NULL AS INT64)"
    assert sql_literal(True, "BOOL") == "TRUE"


# --- SQL text ------------------------------------------------------------------------------


def test_replace_script_binds_values_as_parameters_or_literals_on_the_emulator() -> None:
    staging = TableRef("acme_dev", "_po_stg")
    script = replace_script("p-proj", USAGE, staging, ["a", "x_org_slug"], KEY)
    assert "BEGIN TRANSACTION;" in script.sql and "COMMIT TRANSACTION;" in script.sql
    assert "DECLARE po_org STRING DEFAULT @po_org;" in script.sql
    assert "DELETE FROM `p-proj.acme_dev.demo_usage_raw` WHERE x_org_slug = po_org" in script.sql
    assert "INSERT INTO `p-proj.acme_dev.demo_usage_raw` (`a`, `x_org_slug`) SELECT" in script.sql
    assert {p.name: p.value for p in script.params}["po_end_date"] == date(2026, 1, 2)
    evil = LineageKey("acme'; DROP TABLE x; --", "demo", "main", KEY.start_date, KEY.end_date)
    inline = replace_script("p-proj", USAGE, staging, ["a"], evil, inline=True)
    assert inline.params == []
    assert "DECLARE po_org STRING DEFAULT 'acme\\'; DROP TABLE x; --';" in inline.sql
    with pytest.raises(TerminalError, match="invalid column name"):
        replace_script("p-proj", USAGE, staging, ["a`; DROP"], KEY)


def test_parameter_markers_are_found_and_stripped_with_the_tokenizer() -> None:
    sql = "SELECT @p_a, '@p_a', `@p_a`, @@row_count, @other -- @p_a\nFROM t WHERE x = @p_a"
    assert param_names(sql) == {"p_a", "other"}
    assert strip_param_markers(sql, {"p_a"}) == (
        "SELECT p_a, '@p_a', `@p_a`, @@row_count, @other -- @p_a\nFROM t WHERE x = p_a"
    )


def test_procedures_become_bigquery_procedures_with_dml_in_one_transaction() -> None:
    proc = load_procedure("sp_demo_daily_cost")
    body = procedure_body(proc, "p-proj", "acme_dev", transaction=True)
    assert "CREATE TABLE IF NOT EXISTS `p-proj.acme_dev.demo_daily_cost`" in body[0]
    assert body[1] == "BEGIN TRANSACTION" and body[-1] == "COMMIT TRANSACTION"
    assert "@" not in "".join(body) and "x_org_slug = p_org_slug" in body[2]
    ddl = create_procedure(proc, "p-proj", "acme_dev", transaction=False)
    assert ddl.startswith(
        "CREATE OR REPLACE PROCEDURE `p-proj.acme_dev.sp_demo_daily_cost`(p_start_date DATE,"
    )
    assert "TRANSACTION" not in ddl and ddl.endswith(";\nEND")
    call = call_procedure(proc, "p-proj", "acme_dev", dict.fromkeys(dict(proc.params), None))
    assert call.sql.startswith("CALL `p-proj.acme_dev.sp_demo_daily_cost`(@p_start_date, ")
    ddl_after_dml = parse_procedure(
        "-- procedure: sp_x(p DATE)\nDELETE FROM `{dataset}.t` WHERE d = @p;\n"
        "CREATE TABLE IF NOT EXISTS `{dataset}.u` (a INT64);"
    )
    with pytest.raises(TerminalError, match="DDL after DML"):
        procedure_body(ddl_after_dml, "p-proj", "acme_dev", transaction=True)


# --- job names -----------------------------------------------------------------------------


def test_job_ids_and_staging_names_are_deterministic_per_attempt_and_write() -> None:
    ctx = JobContext("run-1", "extract usage", attempt=1)
    jobs = WriteJobs.for_write("p-proj", USAGE, ctx)
    assert jobs == WriteJobs.for_write("p-proj", USAGE, ctx)
    assert jobs.job_id("load").startswith("po_extract_usage_a1_w1_")
    assert jobs.job_id("dml", 2) == jobs.job_id("dml") + "_g2"
    others = [
        WriteJobs.for_write("p-proj", USAGE, JobContext("run-1", "extract usage", 2)),
        WriteJobs.for_write("p-proj", USAGE, JobContext("run-1", "extract usage", 1, seq=2)),
        WriteJobs.for_write("p-proj", USAGE, JobContext("run-2", "extract usage", 1)),
        WriteJobs.for_write("p-proj", TableRef("acme_dev", "other"), ctx),
    ]
    assert len({jobs.base, *(o.base for o in others)}) == 5
    assert len({jobs.staging, *(o.staging for o in others)}) == 5
    long = WriteJobs.for_write("p-proj", TableRef("acme_dev", "t" * 128), ctx)
    assert len(long.staging.table) <= 128  # TableRef checked it is a valid identifier


# --- errors --------------------------------------------------------------------------------


def api_error(cls: type[gexc.GoogleAPICallError], reason: str, message: str) -> Exception:
    return cls(message, errors=[{"reason": reason, "message": message}])


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (api_error(gexc.Forbidden, "rateLimitExceeded", "Exceeded rate limits"), True),
        (api_error(gexc.InternalServerError, "backendError", "Backend error"), True),
        (api_error(gexc.BadRequest, "internalError", "internal"), True),
        (gexc.ServiceUnavailable("unavailable"), True),
        (gexc.TooManyRequests("slow down"), True),
        (
            api_error(
                gexc.BadRequest,
                "invalidQuery",
                "Transaction is aborted due to concurrent update against table p.d.t",
            ),
            True,
        ),
        (api_error(gexc.BadRequest, "invalidQuery", "Syntax error"), False),
        (api_error(gexc.BadRequest, "invalid", "Invalid schema"), False),
        (api_error(gexc.NotFound, "notFound", "Not found: Table p:d.t"), False),
        (api_error(gexc.Forbidden, "accessDenied", "Access Denied"), False),
    ],
)
def test_errors_map_to_transient_or_terminal_and_name_the_job(
    exc: Exception, transient: bool
) -> None:
    mapped = translate(exc, "replace into acme_dev.t", "po_extract_a1_w1_abc_dml")
    assert isinstance(mapped, TransientError if transient else TerminalError)
    assert "(job po_extract_a1_w1_abc_dml)" in str(mapped)


# --- credentials ---------------------------------------------------------------------------


def test_a_service_account_key_builds_credentials_without_network() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "acme-reader",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "reader@acme-reader.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    creds = service_account_credentials(info)
    assert creds.service_account_email == info["client_email"]
    assert creds.project_id == "acme-reader" and not creds.valid  # no token fetched
    reader = from_url("bigquery://home-proj?location=EU").with_credentials(info)  # type: ignore[attr-defined]
    assert (reader.project, reader.location) == ("acme-reader", "EU")


# --- the lineage writer passes a job context per write -----------------------------------


class RecordingWarehouse:
    """Keeps what each write was given; enough of the protocol for make_writer."""

    def __init__(self) -> None:
        self.contexts: list[JobContext | None] = []

    def ensure_dataset(self, dataset: str) -> None: ...

    def ensure_table(self, table: TableRef, schema: pa.Schema) -> None: ...

    def write_partition(self, table, rows, key, mode, merge_keys, *, job_context=None):  # type: ignore[no-untyped-def]
        self.contexts.append(job_context)
        return WriteResult(str(table), rows.num_rows, 0)


class StepLogLike:
    step_id, attempt = "extract", 3

    def info(self, message: str) -> None: ...


def test_each_write_of_an_attempt_gets_its_own_job_context() -> None:
    wh = RecordingWarehouse()
    at = datetime(2026, 1, 3, tzinfo=UTC)
    write = make_writer(
        wh,
        "acme_dev",
        KEY,
        "run-1",
        lambda: at,
        StepLogLike(),  # type: ignore[arg-type]
        job_context=JobContext("run-1", "extract", 3),
    )
    rows = pa.table({"a": [1]})
    write("t1", rows)
    write("t1", rows)
    assert wh.contexts == [
        JobContext("run-1", "extract", 3, seq=1),
        JobContext("run-1", "extract", 3, seq=2),
    ]


def test_retype_conflicts_compare_warehouse_types() -> None:
    have = pa.schema(
        [("a", pa.int32()), ("b", pa.string()), ("c", pa.float64()), ("d", pa.date32())]
    )
    want = pa.schema([("a", pa.int64()), ("b", pa.json_()), ("c", pa.int64()), ("e", pa.string())])
    assert retype_conflicts(have, want) == ["c is FLOAT64, the schema says INT64"]

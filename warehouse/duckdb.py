"""DuckDB warehouse: the embedded default backend.

DuckDB lets only one process open a file for writing, and refuses other processes even
read access meanwhile. The API, worker children, beat and the CLI all share the file, so
every operation opens its own connection under an exclusive `flock` on `<db>.lock` and
closes it before returning; nothing holds the file between calls.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from pipeline_ops_core.errors import PipelineOpsError, TerminalError, WarehouseLockTimeout
from warehouse.base import (
    DEFAULT_CLUSTER,
    PARTITION_FIELD,
    JobContext,
    LineageKey,
    LockWait,
    LockWaitObserver,
    TableRef,
    WriteFence,
    WriteMode,
    WriteResult,
    check_identifier,
)
from warehouse.checks import (
    check_layout,
    check_rows_in_key,
    check_stream,
    check_write,
    spool_parquet,
)
from warehouse.procedures import SQL_DIR, coerce_args, list_procedures, load_procedure

# Name the incoming Arrow table is registered under; connections are private, so no clash.
_INCOMING = "_pipeline_ops_incoming"
_LOCK_CONFLICT = "Could not set lock"
# DuckDB's buffer pool during a streamed write (it caches what it wrote; the default is 80%
# of the machine's memory). The write's own memory is the batches in flight on top.
STREAM_MEMORY_LIMIT = "384MB"

logger = logging.getLogger("pipeline_ops.warehouse")


@dataclass(frozen=True)
class _Statement:
    sql: str  # DuckDB text
    params: frozenset[str]  # named parameters it references


class DuckDBWarehouse:
    def __init__(
        self,
        path: str | Path,
        lock_timeout: float = 30.0,
        sql_dir: Path = SQL_DIR,
        on_lock_wait: LockWaitObserver | None = None,
    ):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self.sql_dir = sql_dir
        # Told when an operation waits for a lock another program holds on the file
        # (a user's read-only duckdb shell), so the wait is visible in the run log.
        self.on_lock_wait = on_lock_wait
        self.fence: WriteFence | None = None

    def fenced(self, fence: WriteFence) -> DuckDBWarehouse:
        """This warehouse for one step: every change it commits is checked by `fence`,
        held until the COMMIT is done (so it happens before a cancel, or not at all)."""
        other = copy.copy(self)
        other.fence = fence
        return other

    def ensure_dataset(self, dataset: str) -> None:
        ds = _q(check_identifier(dataset, "dataset name"))
        with self._open("ensure dataset") as con, _transaction(con, self.fence):
            _run(con, f"CREATE SCHEMA IF NOT EXISTS {ds}")

    def ensure_table(
        self,
        table: TableRef,
        schema: pa.Schema,
        partition_field: str = PARTITION_FIELD,
        cluster: tuple[str, ...] = DEFAULT_CLUSTER,
    ) -> None:
        # DuckDB has no partitioning or clustering: its row groups carry min/max zone maps
        # that already prune date and org filters. Both are still checked so a schema that
        # BigQuery would refuse fails here too.
        check_layout(table, schema, partition_field, cluster)
        columns = ", ".join(_column_def(f, with_not_null=True) for f in schema)
        with self._open(f"ensure table {table}") as con, _transaction(con, self.fence):
            _run(con, f"CREATE SCHEMA IF NOT EXISTS {_q(table.dataset)}")
            if _table_exists(con, table):
                _add_missing(con, table, schema)
            else:
                _run(con, f"CREATE TABLE IF NOT EXISTS {_qt(table)} ({columns})")

    def write_partition(
        self,
        table: TableRef,
        rows: pa.Table,
        key: LineageKey,
        mode: WriteMode = "replace",
        merge_keys: tuple[str, ...] = (),
        *,
        job_context: JobContext | None = None,  # no jobs here: one local transaction
    ) -> WriteResult:
        check_write(table, rows, key, mode, merge_keys)
        cols = ", ".join(_q(c) for c in rows.column_names)
        if mode == "replace":
            delete, params = _replace_delete(table, key)
        else:  # merge: check_write refused any other mode
            keys = ", ".join(_q(k) for k in merge_keys)
            delete = (
                f"DELETE FROM {_qt(table)} WHERE x_org_slug = $org"
                f" AND ({keys}) IN (SELECT {keys} FROM {_INCOMING})"
            )
            params = {"org": key.org_slug}
        insert = f"INSERT INTO {_qt(table)} ({cols}) SELECT {cols} FROM {_INCOMING}"
        with self._open(f"write to {table}") as con:
            if not _table_exists(con, table):
                raise TerminalError(f"table {table} does not exist; call ensure_table first")
            con.register(_INCOMING, rows)
            with _transaction(con, self.fence):
                deleted = int(_run(con, delete, params)[0][0])
                written = int(_run(con, insert)[0][0])
        return WriteResult(table=str(table), rows_written=written, rows_deleted=deleted)

    def write_stream(
        self,
        table: TableRef,
        rows: pa.RecordBatchReader,
        key: LineageKey,
        *,
        job_context: JobContext | None = None,  # no jobs here: one local transaction
    ) -> WriteResult:
        check_stream(table, rows.schema, key)
        delete, params = _replace_delete(table, key)
        with tempfile.TemporaryDirectory(prefix="pipeline-ops-stream-") as folder:
            # Spooled to a local Parquet file first, each batch checked on the way: the
            # warehouse lock is then held for the SQL only, not while a source is parsed,
            # and DuckDB reads the file in parallel, as one append that it writes out as
            # full row groups while it runs (small appends would stay in memory until the
            # COMMIT), with its buffer pool capped: memory stays near a batch.
            path = Path(folder) / "rows.parquet"
            _, filled = spool_parquet(rows, path, lambda b: check_rows_in_key(table, b, key))
            # Columns null throughout are left to their default (NULL, or a NOT NULL
            # violation, as inserting the nulls would be): DuckDB spends as long on a
            # column of nulls as on one of values, and a FOCUS file fills half its columns.
            names = [f.name for f in rows.schema if f.name in filled or not f.nullable]
            cols = ", ".join(_q(c) for c in names)
            source = "read_parquet('" + str(path).replace("'", "''") + "')"
            insert = f"INSERT INTO {_qt(table)} ({cols}) SELECT {cols} FROM {source}"
            with self._open(f"write to {table}") as con:
                if not _table_exists(con, table):
                    raise TerminalError(f"table {table} does not exist; call ensure_table first")
                _run(con, f"SET memory_limit = '{STREAM_MEMORY_LIMIT}'")
                with _transaction(con, self.fence):
                    deleted = int(_run(con, delete, params)[0][0])
                    written = int(_run(con, insert)[0][0])
        return WriteResult(table=str(table), rows_written=written, rows_deleted=deleted)

    def query(self, sql: str, params: dict[str, object] | None = None) -> pa.Table:
        statements = _transpile(sql, "query")
        if len(statements) != 1:
            raise TerminalError(f"query must be one statement, got {len(statements)}")
        stmt = statements[0]
        values = _bind(stmt, params or {}, "query")
        with self._open("query") as con:
            # A SELECT relation is lazy: it must be read before the connection closes.
            rel = con.sql(stmt.sql, params=values)
            return rel.to_arrow_table() if rel is not None else pa.table({})

    def call_procedure(self, dataset: str, name: str, args: dict[str, object]) -> None:
        proc = load_procedure(name, self.sql_dir)
        values = coerce_args(proc, args)
        statements = [_one(s, f"procedure {name}") for s in proc.render(dataset)]
        with self._open(f"procedure {name}") as con, _transaction(con, self.fence):
            for i, stmt in enumerate(statements, 1):
                with _errors(f"procedure {name} statement {i}"):
                    _run(con, stmt.sql, _bind(stmt, values, f"procedure {name}"))

    def bootstrap_procedures(self, dataset: str) -> list[str]:
        # DuckDB has no stored procedures; proving each file parses and transpiles is the
        # useful part of a bootstrap here.
        names = list_procedures(self.sql_dir)
        for name in names:
            for sql in load_procedure(name, self.sql_dir).render(dataset):
                _one(sql, f"procedure {name}")
        return names

    def add_missing_columns(self, table: TableRef, schema: pa.Schema) -> list[str]:
        with self._open(f"add columns to {table}") as con:
            if not _table_exists(con, table):
                raise TerminalError(f"table {table} does not exist")
            with _transaction(con, self.fence):
                return _add_missing(con, table, schema)

    def table_schema(self, table: TableRef) -> pa.Schema | None:
        with self._open(f"read schema of {table}") as con:
            if not _table_exists(con, table):
                return None
            schema = con.sql(f"SELECT * FROM {_qt(table)} LIMIT 0").to_arrow_table().schema
            nullable = dict(
                _run(
                    con,
                    "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns"
                    " WHERE table_schema = $ds AND table_name = $t",
                    {"ds": table.dataset, "t": table.table},
                )
            )
        return pa.schema([f.with_nullable(nullable.get(f.name, True)) for f in schema])

    def ping(self) -> None:
        with self._open("ping") as con:
            _run(con, "SELECT 1")

    @contextmanager
    def _open(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _errors(what), _flock(self.lock_path, deadline, what):
            con = _connect(self.path, deadline, what, self.on_lock_wait)
            try:
                # UTC so TIMESTAMPTZ reads back as tz=UTC and CURRENT_DATE matches BigQuery.
                _run(con, "SET TimeZone = 'UTC'")
                # No replacement scans: SQL must never read a Python variable that happens to
                # share a table's name; the incoming rows are registered explicitly.
                _run(con, "SET python_enable_replacements = false")
                yield con
            finally:
                con.close()


@contextmanager
def _flock(path: Path, deadline: float, what: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLockTimeout(
                        f"{what}: warehouse lock {path} busy", retry_after=1.0
                    ) from None
                time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
                delay = min(delay * 2, 0.1)
        yield  # closing the descriptor releases the lock, even if the caller raised
    finally:
        os.close(fd)


def _connect(
    path: Path, deadline: float, what: str, observer: LockWaitObserver | None = None
) -> duckdb.DuckDBPyConnection:
    # Our flock excludes our own processes; DuckDB's own lock conflict means some other
    # program (a user's duckdb shell) has the file, which may also pass, so retry it too.
    wait: LockWait | None = None
    started = 0.0
    while True:
        try:
            con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if _LOCK_CONFLICT not in str(exc):
                raise
            if wait is None:
                started = time.monotonic()
                pid, program = lock_holder(str(exc), path)
                wait = LockWait(what, datetime.now(UTC), pid, program)
                _tell(observer, wait)
            if time.monotonic() >= deadline:
                _tell(observer, replace(wait, waited_seconds=time.monotonic() - started))
                raise WarehouseLockTimeout(
                    f"{what}: database {path} is held by {wait.holder}", retry_after=1.0
                ) from None
            time.sleep(0.05)
            continue
        if wait is not None:
            waited = time.monotonic() - started
            _tell(observer, replace(wait, waited_seconds=waited, acquired=True))
        return con


_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def lock_holder(message: str, path: Path) -> tuple[int | None, str | None]:
    """(pid, program) of the process holding DuckDB's lock on `path`: from DuckDB's own
    error text, else from /proc/locks (Linux), else (None, None)."""
    found = _HOLDER.search(message)
    if found:
        return int(found.group(2)), Path(found.group(1)).name
    with suppress(OSError, ValueError):
        st = path.stat()
        # /proc/locks: "1: POSIX  ADVISORY  READ  12826 08:01:1234 0 EOF", the pid, then
        # the file as major:minor (hex) of its device and its inode.
        file_id = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[5] == file_id:
                pid = int(fields[4])
                with suppress(OSError):
                    return pid, Path(os.readlink(f"/proc/{pid}/exe")).name
                return pid, None
    return None, None


def _tell(observer: LockWaitObserver | None, wait: LockWait) -> None:
    if observer is None:
        return
    try:
        observer(wait)
    except Exception:  # reporting a wait must never turn it into a failure
        logger.warning("lock wait observer failed", exc_info=True)


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except PipelineOpsError:
        raise
    except duckdb.Error as exc:
        if _LOCK_CONFLICT in str(exc):
            raise WarehouseLockTimeout(f"{what}: database is locked") from None
        raise TerminalError(f"{what} failed: {_first_line(exc)}") from None


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection, fence: WriteFence | None = None) -> Iterator[None]:
    _run(con, "BEGIN TRANSACTION")
    try:
        yield
        # The fence is held across the COMMIT: it refuses a writer whose run was cancelled,
        # and a cancel waits for it, so no change of a cancelled run is ever committed.
        held: AbstractContextManager[None] = fence.hold() if fence is not None else nullcontext()
        with held:
            _run(con, "COMMIT")
    except BaseException:
        # If even ROLLBACK fails, closing the connection discards the transaction anyway.
        with suppress(duckdb.Error):
            _run(con, "ROLLBACK")
        raise


def _replace_delete(table: TableRef, key: LineageKey) -> tuple[str, dict[str, object]]:
    """The DELETE of a replace write: the key's org, pipeline, credential and dates."""
    sql = (
        f"DELETE FROM {_qt(table)} WHERE x_org_slug = $org AND x_pipeline_id = $pipeline"
        " AND x_credential_id = $credential"
        " AND x_pipeline_run_date BETWEEN $start_date AND $end_date"
    )
    params: dict[str, object] = {
        "org": key.org_slug,
        "pipeline": key.pipeline_id,
        "credential": key.credential_id,
        "start_date": key.start_date,
        "end_date": key.end_date,
    }
    return sql, params


def _add_missing(con: duckdb.DuckDBPyConnection, table: TableRef, schema: pa.Schema) -> list[str]:
    have = {
        r[0]
        for r in _run(
            con,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $ds AND table_name = $t",
            {"ds": table.dataset, "t": table.table},
        )
    }
    added = []
    for field in schema:
        if field.name not in have:
            # Added columns stay nullable: existing rows have no value for them.
            col = _column_def(field, with_not_null=False)
            _run(con, f"ALTER TABLE {_qt(table)} ADD COLUMN {col}")
            added.append(field.name)
    return added


def _column_def(field: pa.Field, with_not_null: bool) -> str:
    name = _q(check_identifier(field.name, "column name"))
    null = " NOT NULL" if with_not_null and not field.nullable else ""
    return f"{name} {duckdb_type(field)}{null}"


def duckdb_type(field: pa.Field) -> str:
    """The DuckDB column type for an Arrow field; only types BigQuery also has are allowed."""
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        t = t.storage_type  # JSON is kept as text, as the BigQuery backend loads it
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR"
    if pa.types.is_timestamp(t):
        # Any zone means an instant; DuckDB stores it as UTC microseconds.
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_decimal128(t):
        return f"DECIMAL({t.precision},{t.scale})"
    simple = {
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }
    if t in simple:
        return simple[t]
    raise TerminalError(f"column {field.name!r}: unsupported Arrow type {field.type}")


def _transpile(sql: str, what: str) -> list[_Statement]:
    try:
        parsed = sqlglot.parse(sql, read="bigquery")
        trees = [t.transform(_bigquery_numeric) for t in parsed if t is not None]
        for tree in trees:
            if tree.find(exp.Command):  # sqlglot's opaque fallback: it would pass text through
                raise TerminalError(f"{what}: GoogleSQL not understood: {tree.sql()[:80]!r}")
        return [
            _Statement(
                # RAISE: a construct DuckDB can't express must fail, not be approximated.
                sql=t.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE),
                params=frozenset(p.name for p in t.find_all(exp.Parameter)),
            )
            for t in trees
        ]
    except SqlglotError as exc:
        raise TerminalError(f"{what}: cannot transpile GoogleSQL: {_first_line(exc)}") from None


def _bigquery_numeric(node: exp.Expression) -> exp.Expression:
    # BigQuery NUMERIC is DECIMAL(38, 9); sqlglot leaves it bare, which DuckDB reads as (18, 3).
    if isinstance(node, exp.DataType) and node.is_type("decimal") and not node.expressions:
        return exp.DataType.build("DECIMAL(38, 9)", dialect="duckdb")
    return node


def _one(sql: str, what: str) -> _Statement:
    statements = _transpile(sql, what)
    if len(statements) != 1:
        raise TerminalError(f"{what}: expected one statement, got {len(statements)}")
    return statements[0]


def _bind(stmt: _Statement, values: dict[str, object], what: str) -> dict[str, object] | None:
    # DuckDB refuses parameters a statement does not reference, so pass only its own.
    missing = sorted(stmt.params - set(values))
    if missing:
        raise TerminalError(f"{what}: missing parameter(s): {', '.join(missing)}")
    return {n: values[n] for n in stmt.params} or None


def _table_exists(con: duckdb.DuckDBPyConnection, table: TableRef) -> bool:
    rows = _run(
        con,
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema = $ds AND table_name = $t",
        {"ds": table.dataset, "t": table.table},
    )
    return bool(rows[0][0])


def _run(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None
) -> list[tuple]:
    # Always read to the end: DuckDB 2 refuses other work on a connection while a result
    # from execute() is only partly fetched.
    return con.execute(sql, params).fetchall()


def _q(name: str) -> str:
    return f'"{name}"'


def _qt(table: TableRef) -> str:
    return f"{_q(table.dataset)}.{_q(table.table)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

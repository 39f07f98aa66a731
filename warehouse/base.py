"""The warehouse contract: protocol, table references, lineage columns and keys.

Rows move as Arrow tables. SQL text is GoogleSQL; non-BigQuery backends
transpile it. Every identifier that reaches SQL passes `check_identifier`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

import pyarrow as pa

from pipeline_ops_core.errors import InvalidIdentifierError

IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")

# The lineage columns every output row carries, in this order, with these types.
LINEAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("x_org_slug", pa.string(), nullable=False),
    pa.field("x_pipeline_id", pa.string(), nullable=False),
    pa.field("x_credential_id", pa.string(), nullable=False),
    pa.field("x_pipeline_run_date", pa.date32(), nullable=False),
    pa.field("x_run_id", pa.string(), nullable=False),
    pa.field("x_ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("x_ingestion_date", pa.date32(), nullable=False),
)
LINEAGE_NAMES: tuple[str, ...] = tuple(f.name for f in LINEAGE_FIELDS)
PARTITION_FIELD = "x_ingestion_date"
DEFAULT_CLUSTER = ("x_org_slug", "x_pipeline_id")

WriteMode = Literal["replace", "merge"]


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is a safe SQL identifier, else raise InvalidIdentifierError."""
    if not isinstance(name, str) or not IDENTIFIER_RE.match(name):
        raise InvalidIdentifierError(f"invalid {what} {name!r}: must match {IDENTIFIER_RE.pattern}")
    return name


@dataclass(frozen=True)
class TableRef:
    dataset: str
    table: str

    def __post_init__(self) -> None:
        check_identifier(self.dataset, "dataset name")
        check_identifier(self.table, "table name")

    def __str__(self) -> str:
        return f"{self.dataset}.{self.table}"


@dataclass(frozen=True)
class LineageKey:
    """The idempotency key: one org, pipeline and credential over a date range.

    A `replace` write deletes every row whose `x_pipeline_run_date` falls in
    [start_date, end_date] for this org, pipeline and credential, then inserts.
    """

    org_slug: str
    pipeline_id: str
    credential_id: str
    start_date: date
    end_date: date


@dataclass(frozen=True)
class JobContext:
    """Who writes: one step attempt of a run, and which of its writes this is (1, 2, ...).

    Backends that run server-side jobs (BigQuery) derive deterministic job ids and staging
    table names from it, so a redelivered attempt finds and reuses its own finished work
    instead of loading twice. Backends without jobs (DuckDB) ignore it.
    """

    run_id: str
    step_id: str
    attempt: int
    seq: int = 1


class WriteFence(Protocol):
    """Who may still change the warehouse: held around the commit of every change a step
    makes.

    `hold()` raises (RunCancelledError) when the writer's run is no longer running or the
    writer no longer holds its step; while it is held, the run cannot be cancelled, so a
    commit either happens before a cancel or not at all.
    """

    def hold(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class WriteResult:
    table: str
    rows_written: int
    rows_deleted: int


@dataclass(frozen=True)
class LockWait:
    """An operation waiting for a lock another program holds on the warehouse (DuckDB's
    file lock). Reported when the wait starts (`waited_seconds` None) and when it ends."""

    what: str  # the operation, e.g. "write to acme_dev.usage_raw"
    since: datetime
    holder_pid: int | None = None
    holder_program: str | None = None
    waited_seconds: float | None = None
    acquired: bool = False

    @property
    def holder(self) -> str:
        if self.holder_pid is None:
            return "another process"
        program = f" ({self.holder_program})" if self.holder_program else ""
        return f"pid {self.holder_pid}{program}"


LockWaitObserver = Callable[[LockWait], None]


class Warehouse(Protocol):
    def fenced(self, fence: WriteFence) -> Warehouse:
        """The same backend, with every change it commits checked by `fence`."""

    def ensure_dataset(self, dataset: str) -> None: ...

    def ensure_table(
        self,
        table: TableRef,
        schema: pa.Schema,
        partition_field: str = PARTITION_FIELD,
        cluster: tuple[str, ...] = DEFAULT_CLUSTER,
    ) -> None: ...

    def write_partition(
        self,
        table: TableRef,
        rows: pa.Table,
        key: LineageKey,
        mode: WriteMode = "replace",
        merge_keys: tuple[str, ...] = (),
        *,
        job_context: JobContext | None = None,
    ) -> WriteResult: ...

    def write_stream(
        self,
        table: TableRef,
        rows: pa.RecordBatchReader,
        key: LineageKey,
        *,
        job_context: JobContext | None = None,
    ) -> WriteResult:
        """A replace write of rows that arrive as record batches: the same one transaction,
        key check and fence as `write_partition(mode="replace")`, with only about one batch
        in memory at a time. A batch that fails a check (or a reader that raises) rolls the
        whole write back."""
        ...

    def query(self, sql: str, params: dict[str, object] | None = None) -> pa.Table: ...

    def call_procedure(self, dataset: str, name: str, args: dict[str, object]) -> None: ...

    def add_missing_columns(self, table: TableRef, schema: pa.Schema) -> list[str]: ...

    def table_schema(self, table: TableRef) -> pa.Schema | None: ...

    def bootstrap_procedures(self, dataset: str) -> list[str]: ...

    def ping(self) -> None: ...

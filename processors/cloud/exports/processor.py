"""The shared flow of the file-export clouds (AWS, Azure, OCI): list, fetch, read, write once.

A subclass supplies `source(ctx)`: an object-store reader built with that cloud's SDK.
Every file is first fetched to a capped local file (on disk); then each is read as record
batches, normalized batch by batch and streamed into one replace write: memory follows the
batch size, not the export's size. The write is one transaction, so a missing, corrupt or
forbidden file (even the last one, half-way) fails the step with nothing written; it
replaces the run's dates, so a re-run or a restated export never duplicates a row. A
source that overrides `post_process` (which sees all rows at once, e.g. to drop
re-delivered rows across files) is read whole instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import BinaryIO, ClassVar, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_ops_core.egress import Limits
from pipeline_ops_core.errors import TerminalError
from processors.base import SourceRead, StepContext, StepResult
from processors.cloud.exports.files import open_export_file
from processors.cloud.exports.focus import normalize_focus_export, rows_in_dates
from processors.providers import endpoint_hosts
from processors.sdk_egress import guarded
from warehouse.schemas.cloud import FOCUS_EXPORT_RAW


class ExportSource(Protocol):
    def list_files(self, months: list[date]) -> list[str]:
        """Names of the objects holding these billing periods (first days of months)."""
        ...

    def fetch(self, name: str) -> BinaryIO:
        """The object, copied to a local (spooled) file of at most max_object_bytes."""
        ...


def billing_months(start: date, end: date) -> list[date]:
    """First days of every calendar month that [start, end] touches."""
    if end < start:
        raise TerminalError(f"end date {end} is before start date {start}")
    months, current = [], start.replace(day=1)
    while current <= end:
        months.append(current)
        current = (current.replace(day=28) + _FOUR_DAYS).replace(day=1)
    return months


class FocusExportProcessor:
    ps_type: ClassVar[str]
    provider: ClassVar[str]
    default_table: ClassVar[str]
    # Source column -> FOCUS_EXPORT_RAW column, beyond the built-in FOCUS version renames.
    renames: ClassVar[dict[str, str]] = {}

    # The credential field that may override the cloud's endpoint (pipeline_ops_core/egress.py
    # decides it).
    endpoint_field: ClassVar[str]

    def source(self, ctx: StepContext) -> ExportSource:
        raise NotImplementedError

    def egress(self) -> AbstractContextManager[None]:
        """Every SDK connection of the step passes the egress policy: the cloud's own hosts,
        or an override the operator allow-listed."""
        hosts = endpoint_hosts(self.provider, self.endpoint_field)
        return guarded(f"credential {self.endpoint_field}", hosts)

    def post_process(self, rows: pa.Table, ctx: StepContext) -> pa.Table:
        """Hook for source-specific clean-up of all rows before the write (e.g. de-duplication)."""
        return rows

    def run(self, ctx: StepContext) -> StepResult:
        with self.egress():
            return self._run(ctx)

    def _run(self, ctx: StepContext) -> StepResult:
        months = billing_months(ctx.start_date, ctx.end_date)
        limits = Limits.from_env()
        source = self.source(ctx)
        names = source.list_files(months)
        periods = ", ".join(m.strftime("%Y-%m") for m in months)
        if not names:
            raise TerminalError(f"no {self.provider} export files found for {periods}")
        ctx.log.info(f"{len(names)} export file(s) for {periods}")
        tally = _Tally()
        table = str(ctx.config.get("destination_table") or self.default_table)
        rows: pa.Table | pa.RecordBatchReader
        with ExitStack() as files:
            # Every file is fetched (to local disk) before the write begins: a missing or
            # forbidden file fails with nothing written, and no download runs while the
            # write holds the warehouse.
            local = []
            for name in names:
                ctx.check_cancelled()
                local.append((name, files.enter_context(source.fetch(name))))
                _to_disk(local[-1][1])
            batches = self._batches(ctx, local, limits, tally)
            if type(self).post_process is FocusExportProcessor.post_process:
                rows = pa.RecordBatchReader.from_batches(FOCUS_EXPORT_RAW, batches)
            else:
                whole = pa.Table.from_batches(list(batches), FOCUS_EXPORT_RAW)
                rows = self.post_process(whole, ctx)
            result = ctx.write(table, rows, date_column="charge_date")
        if isinstance(rows, pa.Table):  # post_process may have dropped rows
            tally.kept = rows.num_rows
            tally.billed = pc.sum(rows.column("billed_cost")).as_py() or 0.0
        read = SourceRead(
            f"{len(names)} {self.provider} export file(s) for {periods}",
            rows_read=tally.read,
            rows_kept=tally.kept,
            first_date=tally.first,
            last_date=tally.last,
        )
        return StepResult(
            rows_written=result.rows_written,
            tables=[str(ctx.table(table))],
            metrics={
                "files": len(names),
                "rows": tally.kept,
                "billed_cost": round(tally.billed, 6),
            },
            read=read,
        )

    def _batches(
        self,
        ctx: StepContext,
        files: list[tuple[str, BinaryIO]],
        limits: Limits,
        tally: _Tally,
    ) -> Iterator[pa.RecordBatch]:
        """Every file's rows in the run's dates, normalized one batch at a time."""
        for number, (name, local) in enumerate(files, 1):
            read = kept = 0
            for batch in open_export_file(name, local, limits):
                raw = pa.Table.from_batches([batch])
                normalized = normalize_focus_export(raw, source_file=name, renames=self.renames)
                part = rows_in_dates(normalized, ctx.start_date, ctx.end_date)
                tally.count(normalized, part)
                read += raw.num_rows
                kept += part.num_rows
                yield from part.to_batches()
            ctx.log.info(
                f"file {number}/{len(files)} {name}: {read} rows, "
                f"{kept} in {ctx.start_date}..{ctx.end_date}"
            )


def _to_disk(local: BinaryIO) -> None:
    # A fetched file small enough to be spooled in memory waits for its turn on disk, so
    # holding a month of small files costs no memory.
    rollover = getattr(local, "rollover", None)
    if callable(rollover):
        rollover()


@dataclass
class _Tally:
    """What the batches held, counted as they pass: rows read and kept, dates, cost."""

    read: int = 0
    kept: int = 0
    billed: float = 0.0
    first: date | None = None
    last: date | None = None

    def count(self, normalized: pa.Table, kept: pa.Table) -> None:
        self.read += normalized.num_rows
        self.kept += kept.num_rows
        self.billed += pc.sum(kept.column("billed_cost")).as_py() or 0.0
        if normalized.num_rows:
            span = pc.min_max(normalized.column("charge_date")).as_py()
            self.first = span["min"] if self.first is None else min(self.first, span["min"])
            self.last = span["max"] if self.last is None else max(self.last, span["max"])


_FOUR_DAYS = timedelta(days=4)

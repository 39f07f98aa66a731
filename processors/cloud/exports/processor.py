"""The shared flow of the file-export clouds (AWS, Azure, OCI): list, fetch, read, write once.

A subclass supplies `source(ctx)`: an object-store reader built with that cloud's SDK. All
files are fetched and parsed before the single write, so a missing, corrupt or forbidden
file fails the step with nothing written; the write replaces the run's dates, so a re-run or
a restated export never duplicates a row.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import BinaryIO, ClassVar, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_ops_core.egress import Limits
from pipeline_ops_core.errors import TerminalError
from processors.base import SourceRead, StepContext, StepResult
from processors.cloud.exports.files import read_export_file
from processors.cloud.exports.focus import normalize_focus_export, rows_in_dates
from processors.providers import endpoint_hosts
from processors.sdk_egress import guarded


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
        parts, read_rows, spans = [], 0, []
        for number, name in enumerate(names, 1):
            with source.fetch(name) as local:
                raw = read_export_file(name, local, limits)
            normalized = normalize_focus_export(raw, source_file=name, renames=self.renames)
            part = rows_in_dates(normalized, ctx.start_date, ctx.end_date)
            ctx.log.info(
                f"file {number}/{len(names)} {name}: {raw.num_rows} rows, "
                f"{part.num_rows} in {ctx.start_date}..{ctx.end_date}"
            )
            parts.append(part)
            read_rows += raw.num_rows
            if normalized.num_rows:
                spans.append(pc.min_max(normalized.column("charge_date")).as_py())
        rows = self.post_process(pa.concat_tables(parts), ctx)
        read = SourceRead(
            f"{len(names)} {self.provider} export file(s) for {periods}",
            rows_read=read_rows,
            rows_kept=rows.num_rows,
            first_date=min((s["min"] for s in spans), default=None),
            last_date=max((s["max"] for s in spans), default=None),
        )
        table = str(ctx.config.get("destination_table") or self.default_table)
        result = ctx.write(table, rows, date_column="charge_date")
        billed = pc.sum(rows.column("billed_cost")).as_py() or 0.0
        return StepResult(
            rows_written=result.rows_written,
            tables=[str(ctx.table(table))],
            metrics={"files": len(names), "rows": rows.num_rows, "billed_cost": round(billed, 6)},
            read=read,
        )


_FOUR_DAYS = timedelta(days=4)

"""The processor contract: what a step gets (StepContext) and returns (StepResult).

`pipeline/` builds the context; processors only read it, call `ctx.write()`
for every row they produce, and raise TransientError or TerminalError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from warehouse.base import TableRef, Warehouse, WriteMode, WriteResult


class RunLog(Protocol):
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...


Writer = Callable[..., WriteResult]


# The key under which a step attempt's metrics keep its SourceRead.
SOURCE_READ_METRIC = "source_read"


@dataclass(frozen=True)
class SourceRead:
    """What a step read before its date filter kept the run's dates.

    A load of 0 rows looks like success unless someone can see that the source had rows,
    just not for these dates; the executor logs this and the run status warns with it.
    """

    source: str  # what was read, for people: "usage.csv", "the OpenAI usage API"
    rows_read: int  # rows in the source, before the date filter
    rows_kept: int  # rows dated in the run's range
    first_date: date | None = None  # the dates the source has rows for, if it says
    last_date: date | None = None

    def describe(self, start: date, end: date) -> str:
        """`35 rows in usage.csv, 0 in 2027-06-01..2027-06-07; the source has data for …`"""
        text = f"{self.rows_read} rows in {self.source}, {self.rows_kept} in {start}..{end}"
        return f"{text}; the source has {self._span()}"

    def warning(self, start: date, end: date) -> str | None:
        """The run-status warning when nothing in the run's dates was found, else None."""
        if self.rows_kept:
            return None
        return f"no rows in {start}..{end}: the source has {self._span()} ({self.source})"

    def _span(self) -> str:
        if self.first_date is not None and self.last_date is not None:
            return f"data for {self.first_date}..{self.last_date}"
        if not self.rows_read:
            return "no rows at all"
        return f"{self.rows_read} rows, none in the run's dates"

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "first_date": self.first_date.isoformat() if self.first_date else None,
            "last_date": self.last_date.isoformat() if self.last_date else None,
        }

    @classmethod
    def from_json(cls, raw: Any) -> SourceRead | None:
        """The record as stored in a step's metrics; None for anything else."""
        if not isinstance(raw, Mapping):
            return None
        try:
            first, last = raw.get("first_date"), raw.get("last_date")
            return cls(
                source=str(raw["source"]),
                rows_read=int(raw["rows_read"]),
                rows_kept=int(raw["rows_kept"]),
                first_date=date.fromisoformat(first) if first else None,
                last_date=date.fromisoformat(last) if last else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _not_cancellable() -> None:
    return None


@dataclass
class StepResult:
    rows_written: int = 0
    tables: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    # What the step read before filtering on the run's dates (sources that filter by date).
    read: SourceRead | None = None


@dataclass
class StepContext:
    org_slug: str
    run_id: str
    pipeline_id: str
    step_id: str
    attempt: int
    start_date: date
    end_date: date
    config: Mapping[str, Any]
    dataset: str
    credential_id: str
    warehouse: Warehouse
    log: RunLog
    _credential_loader: Callable[[], Mapping[str, Any]]
    _writer: Writer
    # Read-only views of data pipeline/ owns, by name (e.g. "subscriptions": the metadata
    # DB's SaaS subscriptions). The processor package that reads one declares its Protocol.
    readers: Mapping[str, Any] = field(default_factory=dict)
    # Raises RunCancelledError once the run is being cancelled (see check_cancelled).
    _cancel_check: Callable[[], None] = _not_cancellable

    def check_cancelled(self) -> None:
        """Stop here if the run is being cancelled: raises RunCancelledError.

        Long loops (pages, files, sleeps) call it between iterations; `write()` always
        does. Cheap: it reads the run's status at most about once a second.
        """
        self._cancel_check()

    def credential(self) -> Mapping[str, Any]:
        """The decrypted credential. Lazy, worker-only; never log what it returns."""
        return self._credential_loader()

    def table(self, name: str) -> TableRef:
        return TableRef(self.dataset, name)

    def write(
        self,
        table: str,
        rows: pa.Table | pa.RecordBatchReader,
        *,
        mode: WriteMode = "replace",
        merge_keys: tuple[str, ...] = (),
        date_column: str | None = None,
        start_date: date | None = None,
    ) -> WriteResult:
        """Stamp lineage on `rows` and write them idempotently into `table`.

        `date_column` (a DATE column of `rows`) sets each row's
        `x_pipeline_run_date`; without it every row gets the run's start date.
        `start_date` earlier than the run's widens the replaced range back to it, for
        sources that restate the days before a run (a look-back window).

        `rows` may be a `pa.RecordBatchReader` (replace only): the batches are stamped and
        written as they are read, in the same single transaction, so a file bigger than
        memory can be written; an error from the reader rolls the whole write back.
        """
        self.check_cancelled()
        return self._writer(
            table,
            rows,
            mode=mode,
            merge_keys=merge_keys,
            date_column=date_column,
            start_date=start_date,
        )


class Processor(Protocol):
    ps_type: ClassVar[str]

    def run(self, ctx: StepContext) -> StepResult: ...

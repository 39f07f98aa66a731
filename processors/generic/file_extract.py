"""generic.file_extract: load a CSV or JSONL file into a warehouse table.

For usage exports and sample data. Config:
  path: file path, relative to the repository root or absolute
  format: csv | jsonl (default: from the file extension)
  destination_table: table to write (replace)
  date_column: optional DATE column; only rows in the run's date range are kept,
               and it becomes each row's x_pipeline_run_date
  columns: optional {name: type} to cast, type in string|int64|float64|date|bool
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from pipeline_ops_core.errors import TerminalError
from pipeline_ops_core.paths import project_path
from processors.base import SourceRead, StepContext, StepResult

_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "date": pa.date32(),
    "bool": pa.bool_(),
}


def read_rows(path: Path, fmt: str) -> pa.Table:
    try:
        if fmt == "csv":
            return pacsv.read_csv(path)
        if fmt == "jsonl":
            return pajson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TerminalError(f"cannot read {path.name} as {fmt}: {exc}") from exc
    raise TerminalError(f"unknown format {fmt!r}: use csv or jsonl")


class FileExtractProcessor:
    ps_type: ClassVar[str] = "generic.file_extract"

    def run(self, ctx: StepContext) -> StepResult:
        cfg = ctx.config
        raw_path = cfg.get("path")
        table = cfg.get("destination_table")
        if not raw_path or not table:
            raise TerminalError("file_extract needs path and destination_table")
        path = project_path(raw_path)
        if not path.is_file():
            raise TerminalError(f"file not found: {raw_path}")
        fmt = cfg.get("format") or path.suffix.lstrip(".").lower().replace("ndjson", "jsonl")
        rows = read_rows(path, fmt)
        for name, type_name in (cfg.get("columns") or {}).items():
            if name not in rows.column_names or type_name not in _TYPES:
                raise TerminalError(f"cannot cast column {name!r} to {type_name!r}")
            idx = rows.column_names.index(name)
            rows = rows.set_column(idx, name, pc.cast(rows.column(name), _TYPES[type_name]))
        date_column = cfg.get("date_column")
        read = None
        if date_column:
            if date_column not in rows.column_names:
                raise TerminalError(f"date_column {date_column!r} not in {path.name}")
            dates = pc.cast(rows.column(date_column), pa.date32())
            rows = rows.set_column(rows.column_names.index(date_column), date_column, dates)
            in_range = pc.and_(
                pc.greater_equal(dates, pa.scalar(ctx.start_date, pa.date32())),
                pc.less_equal(dates, pa.scalar(ctx.end_date, pa.date32())),
            )
            span = pc.min_max(dates).as_py()
            total = rows.num_rows
            rows = rows.filter(in_range)
            read = SourceRead(path.name, total, rows.num_rows, span["min"], span["max"])
            ctx.log.info(read.describe(ctx.start_date, ctx.end_date))
        else:
            ctx.log.info(f"read {rows.num_rows} rows from {path.name}")
        result = ctx.write(table, rows, date_column=date_column)
        return StepResult(rows_written=result.rows_written, tables=[result.table], read=read)

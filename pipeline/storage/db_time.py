"""Deadlines in the database's clock.

Run deadlines, heartbeats, attempt claims and the reaper's comparison are all written
and compared as SQL (`CURRENT_TIMESTAMP` on PostgreSQL, SQLite's `'now'`), never with
the clock of the Python process that happens to write or read them. Two processes whose
clocks disagree (a reaper 150 s ahead of the workers) then still agree on whether a
deadline passed, because only one clock — the database's — is ever consulted.

`DbTime` is what the run store asks for: "now" and "now + seconds" as SQL expressions.
`DATABASE_TIME` is the real one; tests that move time by hand pass a clock that renders
its own instant as a bound literal (tests/support/doubles.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import DateTime, Float, literal
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class DbTime(Protocol):
    def sql_now(self) -> ColumnElement[datetime]: ...

    def sql_after(self, seconds: float) -> ColumnElement[datetime]: ...


class db_now_plus(FunctionElement[datetime]):
    """The database's current UTC time plus a number of seconds (a bound parameter)."""

    type = DateTime(timezone=True)
    inherit_cache = True
    name = "db_now_plus"


@compiles(db_now_plus, "sqlite")
def _sqlite(element: db_now_plus, compiler: Any, **kw: Any) -> str:
    (seconds,) = element.clauses
    # SQLite's 'now' is UTC with millisecond precision. The result has the exact text form
    # SQLAlchemy stores a DateTime in (`YYYY-MM-DD HH:MM:SS.ffffff`), so stored values and
    # SQL-made ones compare correctly as text.
    offset = compiler.process(seconds, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {offset})) || '000')"


@compiles(db_now_plus, "postgresql")
def _postgresql(element: db_now_plus, compiler: Any, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"(CURRENT_TIMESTAMP + make_interval(secs => {compiler.process(seconds, **kw)}))"


@compiles(db_now_plus)
def _other(element: db_now_plus, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"no database clock for dialect {compiler.dialect.name}")


class DatabaseTime:
    def sql_now(self) -> ColumnElement[datetime]:
        return self.sql_after(0)

    def sql_after(self, seconds: float) -> ColumnElement[datetime]:
        return db_now_plus(literal(float(seconds), Float()))


DATABASE_TIME = DatabaseTime()

"""Hot SQLite statements run straight on sqlite3's cursor, without SQLAlchemy's work per execution.

A run's progress write is a few one-row statements, and SQLAlchemy spends ~45 us on each around
sqlite3's ~5-10 us. A `DirectStatement` is compiled once by SQLAlchemy for the connection's dialect;
each row's values then go through the same bind processors SQLAlchemy would apply (JSON, UTC times),
and each returned row through its result processors, so what is stored and read is identical, and
a driver error is raised as the SQLAlchemy exception it would
have been. On other databases the statement simply goes through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TextualSelect

Processor = Callable[[Any], Any]
Statement = UpdateBase | Select[Any] | TextualSelect
Steps = tuple[tuple[int, Processor], ...]
"""(position, processor) for each value that has a processor; the others pass as they are."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """Parameter names, in the order of the statement's `?` markers."""
    constants: Mapping[str, Any]
    """The values of the statement's own literals (`run_count + 1`), by parameter name."""
    binds: Steps
    results: Steps
    """Over the columns returned (RETURNING or SELECT)."""

    def bind(self, row: Mapping[str, Any]) -> list[Any]:
        constants = self.constants
        values = [constants[name] if name in constants else row[name] for name in self.names]
        for index, process in self.binds:
            values[index] = process(values[index])
        return values

    def result(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if not self.results:
            return tuple(row)
        values = list(row)
        for index, process in self.results:
            values[index] = process(values[index])
        return tuple(values)


def _steps(processors: Sequence[Processor | None]) -> Steps:
    return tuple((index, process) for index, process in enumerate(processors) if process is not None)


class DirectStatement:
    """`statement` run on sqlite3's own cursor (compiled on first use)."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self.columns = tuple(statement.exported_columns.keys())
        """The names of the columns it returns (RETURNING or SELECT), in their order."""
        self._compiled: _Compiled | None = None

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute the statement once per row of `rows` (each a mapping of parameter name to value);
        returns the number of rows changed (SQLite only: other drivers may not count an executemany)."""
        if not rows:
            return 0
        if conn.dialect.name != "sqlite":
            return int(conn.execute(self.statement, list(rows)).rowcount)
        compiled = self._compiled or self._compile(conn.dialect)
        params = [compiled.bind(row) for row in rows]
        with _cursor(conn, compiled.sql, params) as cursor:
            return cursor.executemany(compiled.sql, params).rowcount

    def first(self, conn: Connection, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Execute the statement (a SELECT, or one with RETURNING) with `row`; the first row it
        returns, or None."""
        if conn.dialect.name != "sqlite":
            found = conn.execute(self.statement, dict(row)).first()
            return None if found is None else tuple(found)
        compiled = self._compiled or self._compile(conn.dialect)
        params = compiled.bind(row)
        with _cursor(conn, compiled.sql, params) as cursor:
            found = cursor.execute(compiled.sql, params).fetchone()
        return None if found is None else compiled.result(found)

    def all(self, conn: Connection, row: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute the statement (a SELECT, or one with RETURNING) with `row`; every row it returns."""
        if conn.dialect.name != "sqlite":
            return [tuple(found) for found in conn.execute(self.statement, dict(row))]
        compiled = self._compiled or self._compile(conn.dialect)
        params = compiled.bind(row)
        with _cursor(conn, compiled.sql, params) as cursor:
            return [compiled.result(found) for found in cursor.execute(compiled.sql, params)]

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None  # sqlite: `?` markers
        names = tuple(compiled.positiontup)
        binds = [compiled.binds[name] for name in names]
        if any(bind.expanding for bind in binds):  # `IN` of a list: its markers are made per execution
            raise ValueError(f"a list parameter cannot be run directly: {compiled}")
        returned = list(self.statement.exported_columns)  # RETURNING or SELECT columns
        self._compiled = _Compiled(
            str(compiled),
            names,
            {name: bind.value for name, bind in zip(names, binds, strict=True) if not bind.required},
            _steps([bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds]),
            _steps(
                [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned]
            ),
        )
        return self._compiled


@contextmanager
def _cursor(conn: Connection, sql: str, params: Any) -> Iterator[sqlite3.Cursor]:
    """A cursor of the connection's sqlite3 connection (in its transaction), closed after use; a
    driver error is raised as the SQLAlchemy exception SQLAlchemy would have raised."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    cursor = driver.cursor()
    try:
        yield cursor
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(sql, params, error, sqlite3.Error) from error
    finally:
        cursor.close()

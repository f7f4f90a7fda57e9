"""Hot SQLite writes run straight on sqlite3's cursor, without SQLAlchemy's work per execution.

A run's progress write is a few one-row statements, and SQLAlchemy spends ~45 us on each around
sqlite3's ~5-10 us. A `DirectStatement` is compiled once by SQLAlchemy for the connection's dialect;
each row's values then go through the same bind processors SQLAlchemy would apply (JSON, UTC times),
so what is stored is identical, and a driver error is raised as the SQLAlchemy exception it would
have been. On other databases the statement simply goes through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """Parameter names, in the order of the statement's `?` markers."""
    processors: tuple[Callable[[Any], Any] | None, ...]


class DirectStatement:
    """`statement` run with `executemany` on sqlite3's own cursor (compiled on first use)."""

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None) -> None:
        """`keys`: the columns an INSERT is given (default: all of its table's)."""
        self.statement = statement
        self.keys = list(keys) if keys is not None else None
        self._compiled: _Compiled | None = None

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute the statement once per row of `rows` (each a mapping of parameter name to value)."""
        if conn.dialect.name != "sqlite":
            conn.execute(self.statement, list(rows))
            return
        compiled = self._compiled or self._compile(conn.dialect)
        params = [
            tuple(
                value if process is None else process(value)
                for value, process in zip(
                    (row[name] for name in compiled.names), compiled.processors, strict=True
                )
            )
            for row in rows
        ]
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        cursor = driver.cursor()
        try:
            cursor.executemany(compiled.sql, params)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(compiled.sql, params, error, sqlite3.Error) from error
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.keys)  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup)
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        self._compiled = _Compiled(str(compiled), names, processors)
        return self._compiled

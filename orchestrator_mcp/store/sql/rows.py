"""Rows to table objects, `IN` lists in chunks, and aggregates' times made aware."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlmodel import SQLModel

from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.tables import from_row

ModelT = TypeVar("ModelT", bound=SQLModel)
ItemT = TypeVar("ItemT")


def chunks(items: list[ItemT], size: int) -> Iterator[list[ItemT]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def model(cls: type[ModelT], row: Any) -> ModelT:
    """A table object from a whole row; a plain dict of it first, which `from_row` compares and copies
    in a third of the time a row's mapping view takes (13 -> 5 us a task row)."""
    return from_row(cls, dict(zip(row._fields, row, strict=True)))


def fetch_one(
    conn: Connection, statement: DirectStatement, cls: type[ModelT], params: dict[str, Any]
) -> ModelT | None:
    """The first row `statement` returns, as a `cls`, or None."""
    row = statement.first(conn, params)
    return None if row is None else from_row(cls, dict(zip(statement.columns, row, strict=True)))


def fetch_all(
    conn: Connection, statement: DirectStatement, cls: type[ModelT], params: dict[str, Any]
) -> list[ModelT]:
    """Every row `statement` returns, as a `cls`."""
    return [
        from_row(cls, dict(zip(statement.columns, row, strict=True))) for row in statement.all(conn, params)
    ]


def models(cls: type[ModelT], result: Any) -> Iterator[ModelT]:
    """`model` of every row of a result, its column names read once (a row rebuilds them each time)."""
    names = tuple(result.keys())
    for row in result:
        yield from_row(cls, dict(zip(names, row, strict=True)))


def aware(value: Any) -> datetime | None:
    """Aggregates (min/max) bypass the column type: make their result aware UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Times on SQLite: UTCDateTime writes and reads the text SQLAlchemy's own DATETIME processors do
(rows written before it had its own processors compare and read back the same)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from orchestrator_mcp.store.tables import UTCDateTime

DIALECT = sqlite.dialect()
MOMENTS = [
    datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
    datetime(2026, 11, 24, 9, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 29, 3, 30, 15, 120000, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
    datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1, 1, 2, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


Processor = Callable[[Any], Any]


def processors() -> tuple[Processor, Processor]:
    """Ours: UTCDateTime's, as SQLAlchemy (and DirectStatement) take them for SQLite."""
    ours = UTCDateTime().dialect_impl(DIALECT)
    bind, result = ours.bind_processor(DIALECT), ours.result_processor(DIALECT, None)
    assert bind is not None and result is not None
    return bind, result


def sqlalchemy_processors() -> tuple[Processor, Processor]:
    """SQLAlchemy's own for SQLite's DATETIME (which work on naive times)."""
    theirs = sqlite.DATETIME()  # type: ignore[no-untyped-call]
    bind, result = theirs.bind_processor(DIALECT), theirs.result_processor(DIALECT, None)
    assert bind is not None and result is not None
    return bind, result


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_time_is_written_and_read_as_sqlalchemy_would(moment: datetime) -> None:
    (bind, result), (theirs_bind, theirs_result) = processors(), sqlalchemy_processors()
    text = bind(moment)
    assert text == theirs_bind(moment.astimezone(UTC).replace(tzinfo=None))
    read = result(text)
    assert read == theirs_result(text).replace(tzinfo=UTC)
    assert read.tzinfo is UTC and read.timestamp() == moment.timestamp()


def test_null_stays_null_and_a_naive_time_is_refused() -> None:
    bind, result = processors()
    assert bind(None) is None and result(None) is None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 11, 24, 9, 0))


@pytest.mark.parametrize("text", ["2026-11-24 09:00:00", "2026-11-24 09:00:00.5", "2026-11-24"])
def test_shorter_stored_texts_read_as_sqlalchemy_would(text: str) -> None:
    (_, result), (_, theirs_result) = processors(), sqlalchemy_processors()
    assert result(text) == theirs_result(text).replace(tzinfo=UTC)

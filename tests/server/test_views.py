"""How views write times: exactly as `timefmt.rfc3339` does, whatever zone the time came in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from orchestrator_mcp.timefmt import rfc3339
from orchestrator_mcp.views import InstanceView, ValidationView

TIMES = [
    datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
    datetime(2026, 11, 24, 9, 0, 0, 120000, tzinfo=UTC),
    datetime(2026, 11, 24, 9, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 11, 24, 9, 0, 0, 500, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 11, 24, 9, 0, 0, 123456),
]


@pytest.mark.parametrize("moment", TIMES, ids=str)
def test_a_timestamp_is_written_as_rfc3339_utc(moment: datetime) -> None:
    view = InstanceView(id="i", host="h", started_at=moment, last_seen_at=moment)
    dumped = view.model_dump(mode="json")
    assert dumped["started_at"] == dumped["last_seen_at"] == rfc3339(moment)
    assert f'"started_at":"{rfc3339(moment)}"' in view.model_dump_json()


def test_timestamps_in_a_list_are_written_as_rfc3339_utc() -> None:
    view = ValidationView(valid=True, errors=[], next_runs=TIMES)
    assert view.model_dump(mode="json")["next_runs"] == [rfc3339(moment) for moment in TIMES]


def test_a_timestamp_keeps_its_instant() -> None:
    moment = TIMES[3]
    view = InstanceView(id="i", host="h", started_at=moment, last_seen_at=moment)
    assert view.started_at == moment
    assert view.started_at.tzinfo is UTC

"""How views are built: times written exactly as `timefmt.rfc3339` does whatever zone they came in,
a task's schedule description and full policy the same as computed afresh, and their schemas
self-contained yet judging as pydantic's own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from pydantic import BaseModel

from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.schedule import Schedule
from orchestrator_mcp.domain.schedule_words import describe_schedule
from orchestrator_mcp.service.row_views import full_policy, schedule_description
from orchestrator_mcp.timefmt import rfc3339
from orchestrator_mcp.views import InstanceView, RunList, ValidationView, self_contained

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


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), "2026-11-24T09:00:00Z"),
        (datetime(2026, 11, 24, 9, 0, 0, 1, tzinfo=UTC), "2026-11-24T09:00:00.000001Z"),
        (datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris")), "2026-03-29T01:30:00Z"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_rfc3339_writes_utc_with_z_and_microseconds_only_when_there_are_some(
    moment: datetime, text: str
) -> None:
    assert rfc3339(moment) == text


def test_timestamps_in_a_list_are_written_as_rfc3339_utc() -> None:
    view = ValidationView(valid=True, errors=[], warnings=[], next_runs=TIMES)
    assert view.model_dump(mode="json")["next_runs"] == [rfc3339(moment) for moment in TIMES]


def test_a_timestamp_keeps_its_instant() -> None:
    moment = TIMES[3]
    view = InstanceView(id="i", host="h", started_at=moment, last_seen_at=moment)
    assert view.started_at == moment
    assert view.started_at.tzinfo is UTC


SCHEDULES: list[dict[str, Any]] = [
    {"kind": "manual"},
    {"kind": "interval", "expr": "15m"},
    {"kind": "interval", "expr": "1d", "timezone": "Europe/Paris", "start_at": "2026-01-05T09:00:00Z"},
    {"kind": "cron", "expr": "0 9 * * 1-5", "timezone": "Europe/Paris"},
    {"timezone": "Europe/Paris", "expr": "0 9 * * 1-5", "kind": "cron"},
    {"kind": "rrule", "expr": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30", "timezone": "America/New_York"},
    {"kind": "once", "expr": "2026-12-01T09:00", "timezone": "Asia/Tokyo"},
    {"kind": "cron", "expr": "not a cron", "timezone": "UTC"},
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_a_schedule_description_is_the_one_computed_afresh(schedule: dict[str, Any]) -> None:
    expected = describe_schedule(Schedule.model_validate(schedule))
    assert schedule_description(schedule) == expected
    assert schedule_description(dict(schedule)) == expected


POLICIES: list[dict[str, Any]] = [
    {},
    {"overlap": "allow"},
    {"retry": {"max_attempts": 3, "backoff_seconds": 2}, "timeout_seconds": 30},
    {"timeout_seconds": 30, "retry": {"backoff_seconds": 2, "max_attempts": 3}},
]


@pytest.mark.parametrize("policy", POLICIES, ids=str)
def test_a_full_policy_is_the_one_computed_afresh(policy: dict[str, Any]) -> None:
    expected = Policy.model_validate(policy).model_dump(mode="json")
    full = full_policy(policy)
    assert full == expected
    assert list(full) == list(expected)


def test_a_full_policy_is_a_new_value_each_time() -> None:
    first = full_policy({"overlap": "allow"})
    first["retry"]["max_attempts"] = 99
    assert full_policy({"overlap": "allow"})["retry"]["max_attempts"] == 1


class _Error(BaseModel):
    step_id: str | None
    kind: Literal["a", "b"] | None


class _Step(BaseModel):
    at: datetime | None
    size: int


class _Run(BaseModel):
    error: _Error | None
    steps: list[_Step] | None = None
    steps_again: list[_Step]
    output: Any


PLAIN_SCHEMA = _Run.model_json_schema()

INSTANCES: list[Any] = [
    {"error": None, "steps_again": [], "output": None},
    {
        "error": {"step_id": "s", "kind": "a"},
        "steps": [{"at": "2026-11-24T09:00:00Z", "size": 1}],
        "steps_again": [{"at": None, "size": 2}],
        "output": {"x": [1]},
    },
    {"error": {"step_id": None, "kind": None}, "steps": None, "steps_again": [], "output": 3},
    {"error": {"step_id": "s", "kind": "c"}, "steps_again": [], "output": None},  # not in the enum
    {"error": {"step_id": 5, "kind": "a"}, "steps_again": [], "output": None},
    {"error": {"kind": "a"}, "steps_again": [], "output": None},  # step_id missing
    {"error": "boom", "steps_again": [], "output": None},
    {"error": None, "steps": [{"at": 5, "size": 1}], "steps_again": [], "output": None},
    {"error": None, "steps": [None], "steps_again": [], "output": None},
    {"error": None, "steps_again": None, "output": None},  # not nullable
    {"error": None, "steps_again": [{"at": None, "size": None}], "output": None},
    {"steps_again": [], "output": None},  # error missing
    None,
]


def _resolve(reference: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = PLAIN_SCHEMA["$defs"][reference["$ref"].rsplit("/", 1)[-1]]
    return definition


@pytest.mark.parametrize("instance", INSTANCES, ids=str)
def test_a_self_contained_schema_judges_as_the_original_does(instance: Any) -> None:
    compact = self_contained({k: v for k, v in PLAIN_SCHEMA.items() if k != "$defs"}, _resolve)
    assert "$ref" not in json.dumps(compact)
    assert jsonschema.Draft202012Validator(compact).is_valid(instance) is jsonschema.Draft202012Validator(
        PLAIN_SCHEMA
    ).is_valid(instance)


def test_view_schemas_are_self_contained() -> None:
    text = json.dumps(RunList.model_json_schema())
    assert "$ref" not in text and "$defs" not in text and '{"type": "null"}' not in text
    error = RunList.model_json_schema()["properties"]["runs"]["items"]["properties"]["error"]
    assert error["type"] == ["object", "null"] and error["required"] == ["step_id", "type", "message"]

"""Computing fire times within 0.5 s of work (SPEC §11), and what that costs ordinary schedules."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pytest

from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.schedule import (
    Schedule,
    ScheduleTooCostly,
    check_schedule,
    fire_time_budget,
    first_fire_time,
    next_fire_time,
    upcoming_fire_times,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
COSTLY = ["FREQ=SECONDLY;BYEASTER=0;BYMONTH=1", "FREQ=DAILY;BYMONTH=2;BYYEARDAY=366"]
"""Rules dateutil would search for tens of seconds (Easter is never in January; February never has a
366th day of the year)."""
TOO_COSTLY = "schedule is too costly to compute: finding its fire times took over 0.5 s"


def rule(expr: str) -> Schedule:
    return Schedule.model_validate({"kind": "rrule", "expr": expr})


@pytest.mark.parametrize("expr", COSTLY)
def test_a_rule_too_costly_to_compute_is_a_problem_of_its_expr(expr: str) -> None:
    [problem] = check_schedule(rule(expr), NOW)

    assert problem.path == "schedule.expr"
    assert problem.message.startswith(TOO_COSTLY)


@pytest.mark.parametrize("expr", COSTLY)
def test_computing_the_fire_times_of_a_costly_rule_gives_up(expr: str) -> None:
    with pytest.raises(ScheduleTooCostly, match=TOO_COSTLY):
        upcoming_fire_times(rule(expr), NOW, 5)


def test_calls_in_one_budget_share_its_deadline() -> None:
    """A budget of 0 s has passed before any fire time is found, whatever the machine's speed."""
    weekly = rule("FREQ=WEEKLY;BYDAY=MO")
    cron = Schedule.model_validate({"kind": "cron", "expr": "0 9 * * 1-5"})
    for compute in (
        lambda: first_fire_time(weekly, NOW),
        lambda: next_fire_time(cron, NOW, NOW),
        lambda: upcoming_fire_times(cron, NOW, 3),
    ):
        with pytest.raises(ScheduleTooCostly, match="took over 0 s"), fire_time_budget(0):
            compute()

    with fire_time_budget(60):  # the outer budget holds for the calls inside it
        assert first_fire_time(weekly, NOW) is not None


def test_the_profile_hook_is_removed_and_a_previous_one_kept() -> None:
    calls: list[str] = []

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        calls.append(event)

    sys.setprofile(profiler)
    try:
        assert check_schedule(rule("FREQ=WEEKLY;BYDAY=MO"), NOW) == []
        assert sys.getprofile() is profiler
        assert check_schedule(rule(COSTLY[1]), NOW) == [Problem("schedule.expr", check_problem())]
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert calls  # it was in place before and after


def check_problem() -> str:
    return str(ScheduleTooCostly(0.5))


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("cron", "0 9 * * 1-5"),
        ("cron", "*/15 * * * *"),
        ("cron", "0 0 * 2 1#5"),  # a fifth Monday of February: every 28 years or so
        ("rrule", "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30"),
        ("rrule", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
        ("interval", "15m"),
    ],
)
def test_ordinary_schedules_are_computed_within_their_budget(kind: str, expr: str) -> None:
    """Bench figures (bench/budgets.py): each of these takes at most a few milliseconds."""
    schedule = Schedule.model_validate({"kind": kind, "expr": expr})

    assert check_schedule(schedule, NOW) == []
    assert len(upcoming_fire_times(schedule, NOW, 50)) == 50


def test_a_counted_rule_stopped_midway_is_computed_whole_the_next_time() -> None:
    """dateutil's occurrence cache would be left half-built by a stop inside it; none is kept."""
    counted = rule("DTSTART:20260101T000000\nRRULE:FREQ=MINUTELY;COUNT=10000")
    expected = upcoming_fire_times(counted, NOW.replace(month=1, day=7), 3)

    with pytest.raises(ScheduleTooCostly), fire_time_budget(0):
        upcoming_fire_times(counted, NOW.replace(month=1, day=7), 3)

    assert upcoming_fire_times(counted, NOW.replace(month=1, day=7), 3) == expected
    assert len(expected) == 3


def test_count_is_at_most_ten_thousand() -> None:
    [problem] = check_schedule(rule("FREQ=DAILY;COUNT=10001"), NOW)
    assert problem == Problem("schedule.expr", "COUNT must be a whole number from 1 to 10000")

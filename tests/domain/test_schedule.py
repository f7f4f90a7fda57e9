from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from pydantic import ValidationError

from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.schedule import (
    Duration,
    Schedule,
    ScheduleKind,
    apply_jitter,
    check_schedule,
    count_fire_times_between,
    fire_time_budget,
    fire_times_between,
    first_fire_time,
    next_fire_time,
    parse_duration,
    schedule_anchor,
    upcoming_fire_times,
)
from orchestrator_mcp.domain.schedule_words import describe_schedule

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def schedule(kind: str, expr: str = "", timezone: str = "UTC", **fields: Any) -> Schedule:
    return Schedule.model_validate({"kind": kind, "expr": expr, "timezone": timezone, **fields})


def on_clock(times: list[datetime], timezone: str) -> list[str]:
    """Fire times as the wall clock of `timezone` shows them, with the zone's abbreviation."""
    return [t.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z") for t in times]


def upcoming(kind: str, expr: str, timezone: str, now: datetime, count: int, **fields: Any) -> list[str]:
    made = schedule(kind, expr, timezone, **fields)
    assert check_schedule(made, now) == []
    return on_clock(upcoming_fire_times(made, now, count), timezone)


def paths(problems: list[Problem]) -> list[str]:
    return [problem.path for problem in problems]


# --- the model -------------------------------------------------------------------------------


def test_naive_bounds_are_read_in_the_schedule_timezone_and_stored_in_utc() -> None:
    made = schedule(
        "cron", "0 9 * * *", "Europe/Paris", start_at="2026-07-01T09:00", end_at="2026-12-01T09:00"
    )

    assert made.start_at == utc(2026, 7, 1, 7, 0)
    assert made.end_at == utc(2026, 12, 1, 8, 0)


def test_aware_bounds_are_stored_in_utc_without_microseconds() -> None:
    made = schedule("cron", "0 9 * * *", start_at="2026-07-01T09:00:00.123456+02:00")

    assert made.start_at == utc(2026, 7, 1, 7, 0)
    assert made.start_at is not None and made.start_at.tzinfo == UTC


def test_unknown_fields_and_out_of_range_jitter_are_rejected_by_the_model() -> None:
    with pytest.raises(ValidationError):
        Schedule.model_validate({"kind": "cron", "expr": "0 9 * * *", "every": "day"})
    with pytest.raises(ValidationError):
        schedule("cron", "0 9 * * *", jitter_seconds=3601)
    with pytest.raises(ValidationError):
        schedule("cron", "0 9 * * *", jitter_seconds=-1)
    with pytest.raises(ValidationError):
        schedule("cron", "x" * 1001)


def test_every_field_is_described_for_a_model_with_an_example() -> None:
    properties = Schedule.model_json_schema()["properties"]

    for name, field in properties.items():
        assert "Example" in field["description"], name
    assert "'0 9 * * 1-5'" in properties["expr"]["description"]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", Duration(seconds=900)),
        ("P1D", Duration(days=1)),
        ("P1W", Duration(days=7)),
        ("PT1H30M", Duration(seconds=5400)),
        ("P1DT12H", Duration(days=1, seconds=43200)),
        ("PT0.5H", Duration(seconds=1800)),
        ("pt90s", Duration(seconds=90)),
        ("90s", Duration(seconds=90)),
        ("15m", Duration(seconds=900)),
        ("2h", Duration(seconds=7200)),
        ("1d", Duration(days=1)),
        ("1h30m", Duration(seconds=5400)),
        ("1h 30m", Duration(seconds=5400)),
        ("1w", Duration(days=7)),
    ],
)
def test_durations_are_read_from_iso_8601_and_shorthand(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a duration"),
        ("15", "is not a duration"),
        ("P", "is not a duration"),
        ("PT", "is not a duration"),
        ("every day", "is not a duration"),
        ("P1M", "months and years are not supported"),
        ("P1Y", "months and years are not supported"),
        ("PT0S", "at least 1 second"),
        ("0s", "at least 1 second"),
        ("PT1.5S", "whole number of seconds"),
        ("P4000D", "at most 3660 days"),
    ],
)
def test_bad_durations_raise_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


# --- once ------------------------------------------------------------------------------------


def test_once_without_an_offset_is_read_in_the_schedule_timezone_and_fires_exactly_once() -> None:
    made = schedule("once", "2026-12-01T09:00", "Europe/Paris")

    first = first_fire_time(made, NOW)

    assert first == utc(2026, 12, 1, 8, 0)
    assert first is not None and next_fire_time(made, first, first) is None
    assert upcoming_fire_times(made, NOW, 5) == [first]


def test_once_with_an_offset_ignores_the_schedule_timezone() -> None:
    made = schedule("once", "2026-12-01T09:00:00Z", "Asia/Kolkata")

    assert first_fire_time(made, NOW) == utc(2026, 12, 1, 9, 0)


def test_once_inside_a_spring_forward_gap_fires_when_the_gap_ends() -> None:
    made = schedule("once", "2026-03-08T02:30", "America/New_York")

    assert on_clock(upcoming_fire_times(made, NOW, 1), "America/New_York") == ["2026-03-08 03:00 EDT"]


def test_once_in_the_past_can_never_fire_again() -> None:
    made = schedule("once", "2025-12-01T09:00:00Z")

    assert paths(check_schedule(made, NOW)) == ["schedule.expr"]
    assert "can never fire again" in check_schedule(made, NOW)[0].message
    assert first_fire_time(made, NOW) is None


def test_once_needs_a_time_of_day() -> None:
    problems = check_schedule(schedule("once", "2026-12-01"), NOW)

    assert paths(problems) == ["schedule.expr"]
    assert "expected ISO 8601 like '2026-12-01T09:00'" in problems[0].message


# --- interval --------------------------------------------------------------------------------


def test_interval_without_start_first_fires_one_interval_after_now() -> None:
    made = schedule("interval", "15m")

    assert first_fire_time(made, NOW + timedelta(microseconds=5)) == NOW + timedelta(minutes=15)


def test_interval_with_a_future_start_first_fires_at_the_start() -> None:
    made = schedule("interval", "PT1H", start_at="2026-01-02T00:00:00Z")

    assert first_fire_time(made, NOW) == utc(2026, 1, 2)


def test_interval_with_a_past_start_first_fires_at_the_next_time_on_its_grid() -> None:
    made = schedule("interval", "PT1H", start_at="2025-12-31T00:10:00Z")

    assert first_fire_time(made, NOW) == utc(2026, 1, 1, 12, 10)
    assert first_fire_time(made, utc(2026, 1, 1, 12, 10)) == utc(2026, 1, 1, 12, 10)


def test_interval_fire_times_stay_on_the_anchor_grid_however_late_the_last_run_was() -> None:
    made = schedule("interval", "PT15M")
    anchor = utc(2026, 1, 1, 12, 15)

    late = next_fire_time(made, utc(2026, 1, 1, 13, 7, 42), anchor)

    assert late == utc(2026, 1, 1, 13, 15)
    assert next_fire_time(made, utc(2026, 1, 1, 13, 15), anchor) == utc(2026, 1, 1, 13, 30)
    assert next_fire_time(made, utc(2026, 1, 1, 0, 0), anchor) == anchor


def test_a_daily_interval_keeps_its_wall_clock_time_across_both_dst_changes() -> None:
    spring = upcoming("interval", "1d", "Europe/Paris", utc(2026, 3, 27), 4, start_at="2026-03-27T09:00")
    autumn = upcoming("interval", "P1D", "Europe/Paris", utc(2026, 10, 24), 3, start_at="2026-10-24T09:00")

    assert spring == [
        "2026-03-27 09:00 CET",
        "2026-03-28 09:00 CET",
        "2026-03-29 09:00 CEST",
        "2026-03-30 09:00 CEST",
    ]
    assert autumn == ["2026-10-24 09:00 CEST", "2026-10-25 09:00 CET", "2026-10-26 09:00 CET"]


def test_an_hourly_interval_counts_elapsed_time_across_dst() -> None:
    times = upcoming("interval", "PT24H", "Europe/Paris", utc(2026, 3, 28), 2, start_at="2026-03-28T09:00")

    assert times == ["2026-03-28 09:00 CET", "2026-03-29 10:00 CEST"]


def test_a_daily_interval_at_a_time_the_gap_skips_fires_when_the_gap_ends_then_resumes() -> None:
    times = upcoming("interval", "1d", "America/New_York", utc(2026, 3, 7), 3, start_at="2026-03-07T02:30")

    assert times == ["2026-03-07 02:30 EST", "2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"]


def test_a_daily_interval_whose_first_fire_the_gap_moves_keeps_its_time_after_the_gap() -> None:
    made = schedule("interval", "1d", "America/New_York")
    created = utc(2026, 3, 7, 7, 30)  # Saturday 02:30 EST; Sunday skips 02:00-03:00
    first = first_fire_time(made, created)
    anchor = schedule_anchor(made, created, first)
    assert anchor == created and first is not None
    second = next_fire_time(made, first, anchor)
    assert second is not None
    third = next_fire_time(made, second, anchor)
    assert third is not None

    assert on_clock([first, second, third], "America/New_York") == [
        "2026-03-08 03:00 EDT",
        "2026-03-09 02:30 EDT",
        "2026-03-10 02:30 EDT",
    ]
    assert upcoming_fire_times(made, created, 3) == [first, second, third]


def test_every_schedule_but_an_interval_without_start_is_anchored_at_its_first_fire_time() -> None:
    for made in (
        schedule("interval", "1d", start_at="2026-01-05T09:00:00Z"),
        schedule("cron", "0 9 * * *"),
        schedule("rrule", "FREQ=WEEKLY;BYDAY=SU"),
        schedule("once", "2026-02-01T00:00:00Z"),
    ):
        first = first_fire_time(made, NOW)
        assert first is not None and schedule_anchor(made, NOW, first) == first, made.kind
    for never in (schedule("interval", "1h", end_at="2026-01-01T12:30:00Z"), schedule("manual")):
        assert schedule_anchor(never, NOW, first_fire_time(never, NOW)) is None


def test_a_weekly_interval_with_hours_adds_calendar_days_then_elapsed_hours() -> None:
    times = upcoming("interval", "P1DT1H", "UTC", utc(2026, 1, 1), 3, start_at="2026-01-01T00:00:00Z")

    assert times == ["2026-01-01 00:00 UTC", "2026-01-02 01:00 UTC", "2026-01-03 02:00 UTC"]


def test_counting_interval_fire_times_is_arithmetic_and_matches_listing_them() -> None:
    made = schedule("interval", "1d", "Europe/Paris", start_at="2000-01-01T09:00")
    anchor = utc(2000, 1, 1, 8)

    assert count_fire_times_between(made, anchor, utc(2000, 1, 1), utc(2026, 1, 1)) == 9497
    window = (utc(2026, 3, 1), utc(2026, 4, 15))
    assert count_fire_times_between(made, anchor, *window) == len(
        fire_times_between(made, anchor, *window, 100)
    )
    assert count_fire_times_between(made, anchor, utc(2000, 1, 1), utc(2026, 1, 1), cap=10) == 10


@pytest.mark.parametrize("expr", ["0 */3 * * *", "*/20 1 * * *", "30 1,2 * * *", "0 9 * * 1-5"])
def test_counting_cron_fire_times_across_both_dst_changes_matches_listing_them(expr: str) -> None:
    made = schedule("cron", expr, "America/New_York")
    window = (utc(2026, 2, 1), utc(2026, 12, 1))

    with fire_time_budget(60):  # thousands of fire times: more than one budget's worth on a busy machine
        listed = fire_times_between(made, NOW, *window, 100_000)

    assert count_fire_times_between(made, NOW, *window) == len(listed)


# --- cron ------------------------------------------------------------------------------------


def test_cron_weekdays_at_nine_follow_the_paris_wall_clock() -> None:
    times = upcoming("cron", "0 9 * * 1-5", "Europe/Paris", utc(2026, 3, 27), 3)

    assert times == ["2026-03-27 09:00 CET", "2026-03-30 09:00 CEST", "2026-03-31 09:00 CEST"]


@pytest.mark.parametrize("expr", ["0 9 * * 0", "0 9 * * 7", "0 9 * * SUN", "0 9 * * sun"])
def test_cron_day_of_week_zero_seven_and_sun_all_mean_sunday(expr: str) -> None:
    first = first_fire_time(schedule("cron", expr), NOW)

    assert first == utc(2026, 1, 4, 9)  # 2026-01-04 is a Sunday


def test_cron_accepts_month_and_day_names() -> None:
    made = schedule("cron", "0 9 * FEB MON-FRI")

    assert first_fire_time(made, NOW) == utc(2026, 2, 2, 9)


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", [utc(2026, 1, 1, 12), utc(2026, 1, 1, 13)]),
        ("@daily", [utc(2026, 1, 2), utc(2026, 1, 3)]),
        ("@midnight", [utc(2026, 1, 2), utc(2026, 1, 3)]),
        ("@weekly", [utc(2026, 1, 4), utc(2026, 1, 11)]),
        ("@monthly", [utc(2026, 2, 1), utc(2026, 3, 1)]),
        ("@yearly", [utc(2027, 1, 1), utc(2028, 1, 1)]),
        ("@annually", [utc(2027, 1, 1), utc(2028, 1, 1)]),
        ("@DAILY", [utc(2026, 1, 2), utc(2026, 1, 3)]),
    ],
)
def test_cron_macros_fire_at_plain_crontab_times_not_hashed_ones(
    macro: str, expected: list[datetime]
) -> None:
    assert upcoming_fire_times(schedule("cron", macro), NOW, 2) == expected


def test_cron_in_kolkata_follows_its_half_hour_offset() -> None:
    assert first_fire_time(schedule("cron", "0 9 * * *", "Asia/Kolkata"), NOW) == utc(2026, 1, 2, 3, 30)


@pytest.mark.parametrize(
    ("timezone", "day", "expected"),
    [
        (
            "America/New_York",
            utc(2026, 3, 7),
            ["2026-03-07 02:30 EST", "2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"],
        ),
        (
            "Europe/Paris",
            utc(2026, 3, 28),
            ["2026-03-28 02:30 CET", "2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"],
        ),
    ],
)
def test_cron_time_in_the_spring_forward_gap_fires_once_when_the_gap_ends(
    timezone: str, day: datetime, expected: list[str]
) -> None:
    assert upcoming("cron", "30 2 * * *", timezone, day, 3) == expected


def test_cron_minutes_of_a_skipped_hour_fire_once_at_the_end_of_the_gap() -> None:
    times = upcoming("cron", "0,20,40 2 * * *", "America/New_York", utc(2026, 3, 8), 4)

    assert times == [
        "2026-03-08 03:00 EDT",
        "2026-03-09 02:00 EDT",
        "2026-03-09 02:20 EDT",
        "2026-03-09 02:40 EDT",
    ]


def test_cron_time_in_the_repeated_fall_back_hour_fires_once_at_its_first_occurrence() -> None:
    times = upcoming("cron", "30 1 * * *", "America/New_York", utc(2026, 10, 31), 3)

    assert times == ["2026-10-31 01:30 EDT", "2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]


def test_cron_fixed_time_does_not_fire_again_when_asked_during_the_second_pass_of_the_hour() -> None:
    made = schedule("cron", "30 1 * * *", "America/New_York")
    second_pass = utc(2026, 11, 1, 6, 10)  # 01:10 EST

    assert on_clock([next_fire_time(made, second_pass, NOW) or NOW], "America/New_York") == [
        "2026-11-02 01:30 EST"
    ]


def test_cron_every_15_minutes_keeps_firing_through_the_repeated_hour() -> None:
    times = upcoming("cron", "*/15 * * * *", "America/New_York", utc(2026, 11, 1, 5, 30), 7)

    assert times == [
        "2026-11-01 01:30 EDT",
        "2026-11-01 01:45 EDT",
        "2026-11-01 01:00 EST",
        "2026-11-01 01:15 EST",
        "2026-11-01 01:30 EST",
        "2026-11-01 01:45 EST",
        "2026-11-01 02:00 EST",
    ]


def test_cron_every_15_minutes_asked_during_the_second_pass_continues_from_there() -> None:
    made = schedule("cron", "*/15 * * * *", "America/New_York")

    after = utc(2026, 11, 1, 6, 20)  # 01:20 EST

    assert on_clock(upcoming_fire_times(made, after, 2), "America/New_York") == [
        "2026-11-01 01:30 EST",
        "2026-11-01 01:45 EST",
    ]


def test_cron_every_15_minutes_skips_the_missing_hour_without_a_double_run() -> None:
    times = upcoming("cron", "*/15 * * * *", "Europe/Paris", utc(2026, 3, 29, 0, 30), 3)

    assert times == ["2026-03-29 01:30 CET", "2026-03-29 01:45 CET", "2026-03-29 03:00 CEST"]


def test_cron_hourly_fires_every_elapsed_hour_across_both_dst_changes() -> None:
    made = schedule("cron", "0 * * * *", "America/New_York")

    for start in (utc(2026, 3, 8, 4), utc(2026, 11, 1, 3)):
        times = upcoming_fire_times(made, start, 6)
        assert [b - a for a, b in zip(times, times[1:], strict=False)] == [timedelta(hours=1)] * 5


def test_cron_on_lord_howe_handles_its_half_hour_dst_change() -> None:
    assert upcoming("cron", "0 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 2), 3) == [
        "2026-10-03 02:00 +1030",
        "2026-10-04 02:30 +11",
        "2026-10-05 02:00 +11",
    ]
    assert upcoming("cron", "45 1 * * *", "Australia/Lord_Howe", utc(2026, 4, 3), 3) == [
        "2026-04-04 01:45 +11",
        "2026-04-05 01:45 +11",
        "2026-04-06 01:45 +1030",
    ]


@pytest.mark.parametrize("expr", ["0 9 * * * *", "0 0 9 * * * 2026", "0 9 * *", "", "@reboot", "@every 5m"])
def test_cron_needs_exactly_five_fields_or_a_known_macro(expr: str) -> None:
    problems = check_schedule(schedule("cron", expr), NOW)

    assert paths(problems) == ["schedule.expr"]
    assert "expected a 5-field crontab like '0 9 * * 1-5' or @hourly/@daily" in problems[0].message


@pytest.mark.parametrize(
    "expr", ["H 9 * * *", "0 H(8-10) * * *", "R 9 * * *", "61 * * * *", "0 24 * * *", "*/0 * * * *"]
)
def test_cron_rejects_hashed_random_and_out_of_range_fields(expr: str) -> None:
    assert paths(check_schedule(schedule("cron", expr), NOW)) == ["schedule.expr"]


def test_cron_for_a_date_that_never_exists_can_never_fire() -> None:
    problems = check_schedule(schedule("cron", "0 9 31 2 *"), NOW)

    assert paths(problems) == ["schedule.expr"]
    assert "can never fire again" in problems[0].message


def test_cron_on_the_leap_day_is_valid_and_waits_for_the_next_one() -> None:
    made = schedule("cron", "0 9 29 2 *")

    assert check_schedule(made, NOW) == []
    assert first_fire_time(made, NOW) == utc(2028, 2, 29, 9)


# --- rrule -----------------------------------------------------------------------------------


def test_rrule_fires_on_the_chosen_weekdays_at_the_chosen_time() -> None:
    times = upcoming("rrule", "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30", "UTC", NOW, 3)

    assert times == ["2026-01-05 08:30 UTC", "2026-01-07 08:30 UTC", "2026-01-12 08:30 UTC"]


def test_rrule_accepts_an_rrule_prefix_and_a_dtstart_line() -> None:
    made = schedule("rrule", "DTSTART:20260105T090000\nRRULE:FREQ=DAILY;INTERVAL=2", "Europe/Paris")

    assert on_clock(upcoming_fire_times(made, NOW, 3), "Europe/Paris") == [
        "2026-01-05 09:00 CET",
        "2026-01-07 09:00 CET",
        "2026-01-09 09:00 CET",
    ]


def test_rrule_dtstart_in_utc_or_another_zone_is_moved_to_the_schedule_wall_clock() -> None:
    in_utc = schedule("rrule", "DTSTART:20260105T080000Z\nRRULE:FREQ=DAILY", "Europe/Paris")
    in_tokyo = schedule("rrule", "DTSTART;TZID=Asia/Tokyo:20260105T170000\nRRULE:FREQ=DAILY", "Europe/Paris")

    assert first_fire_time(in_utc, NOW) == first_fire_time(in_tokyo, NOW) == utc(2026, 1, 5, 8)


def test_rrule_without_dtstart_is_anchored_at_start_at_and_its_byhour_wins() -> None:
    made = schedule("rrule", "FREQ=DAILY;BYHOUR=7", "UTC", start_at="2026-02-01T10:45:30Z")

    assert upcoming_fire_times(made, NOW, 2) == [utc(2026, 2, 2, 7, 45), utc(2026, 2, 3, 7, 45)]


def test_rrule_without_dtstart_or_start_is_anchored_at_creation_with_seconds_zero() -> None:
    made = schedule("rrule", "FREQ=DAILY", "UTC")
    created = utc(2026, 1, 1, 12, 0, 42)

    first = first_fire_time(made, created)

    assert first == utc(2026, 1, 2, 12, 0)
    assert first is not None and next_fire_time(made, first, first) == utc(2026, 1, 3, 12, 0)


def test_rrule_time_in_the_spring_forward_gap_fires_when_the_gap_ends() -> None:
    times = upcoming("rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "Europe/Paris", utc(2026, 3, 27, 12), 3)

    assert times == ["2026-03-28 02:30 CET", "2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"]


def test_rrule_time_in_the_repeated_hour_fires_once() -> None:
    times = upcoming("rrule", "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "America/New_York", utc(2026, 10, 31, 12), 2)

    assert times == ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]


def test_rrule_with_dtstart_years_ago_gives_the_times_dateutil_gives() -> None:
    text = "DTSTART:20190315T071500\nRRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SA"
    made = schedule("rrule", text)
    expected = [t.replace(tzinfo=UTC) for t in rrulestr(text).xafter(datetime(2026, 1, 1, 12), count=5)]

    assert upcoming_fire_times(made, NOW, 5) == expected


def test_rrule_date_only_until_includes_that_whole_day() -> None:
    made = schedule("rrule", "FREQ=DAILY;BYHOUR=18;BYMINUTE=0;UNTIL=20260103", "UTC")

    assert upcoming_fire_times(made, NOW, 10) == [
        utc(2026, 1, 1, 18),
        utc(2026, 1, 2, 18),
        utc(2026, 1, 3, 18),
    ]


@pytest.mark.parametrize(
    "expr",
    [
        "DTSTART:20250101T090000\nRRULE:FREQ=DAILY;COUNT=3",
        "FREQ=DAILY;UNTIL=20251231T000000Z",
    ],
)
def test_an_exhausted_rrule_can_never_fire_again(expr: str) -> None:
    problems = check_schedule(schedule("rrule", expr), NOW)

    assert paths(problems) == ["schedule.expr"]
    assert "can never fire again" in problems[0].message


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("FREQ=FORTNIGHTLY", "invalid 'FREQ': FORTNIGHTLY"),
        ("FREQ=DAILY;BYHOUR=25", "hour must be in 0..23"),
        ("FREQ=DAILY;BYDAY=XX", "invalid 'BYDAY': XX"),
        ("FREQ=DAILY;BYWHATEVER=1", "unknown parameter 'BYWHATEVER'"),
        ("BYHOUR=9", "FREQ is missing"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20270101", "COUNT or UNTIL, not both"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "no month has the days in BYMONTHDAY"),
        ("RRULE:FREQ=DAILY\nEXDATE:20260102T090000", "only one DTSTART line and one RRULE"),
        ("DTSTART:2026-01-05\nRRULE:FREQ=DAILY", "is not an RFC 5545 date-time"),
        ("DTSTART;TZID=Mars/Base:20260105T090000\nRRULE:FREQ=DAILY", "unknown TZID"),
        ("", "no RRULE found"),
    ],
)
def test_malformed_rrules_are_reported_on_expr_with_the_reason(expr: str, message: str) -> None:
    problems = check_schedule(schedule("rrule", expr), NOW)

    assert paths(problems) == ["schedule.expr"]
    assert message in problems[0].message


# --- manual and bounds -----------------------------------------------------------------------


def test_manual_has_no_fire_times_and_needs_no_expression() -> None:
    made = schedule("manual")

    assert check_schedule(made, NOW) == []
    assert first_fire_time(made, NOW) is None
    assert next_fire_time(made, NOW, NOW) is None
    assert upcoming_fire_times(made, NOW, 3) == []
    assert paths(check_schedule(schedule("manual", "0 9 * * *"), NOW)) == ["schedule.expr"]


def test_start_and_end_bound_the_fire_times_inclusively() -> None:
    made = schedule("cron", "0 9 * * *", start_at="2026-02-01T09:00:00Z", end_at="2026-02-03T09:00:00Z")

    assert upcoming_fire_times(made, NOW, 10) == [utc(2026, 2, 1, 9), utc(2026, 2, 2, 9), utc(2026, 2, 3, 9)]
    assert next_fire_time(made, utc(2026, 2, 3, 9), utc(2026, 2, 1, 9)) is None


def test_end_not_after_start_is_reported_on_end_at() -> None:
    made = schedule("cron", "0 9 * * *", start_at="2026-02-01T09:00:00Z", end_at="2026-02-01T09:00:00Z")

    assert paths(check_schedule(made, NOW)) == ["schedule.end_at"]


def test_end_in_the_past_can_never_fire_again() -> None:
    problems = check_schedule(schedule("interval", "1h", end_at="2025-06-01T00:00:00Z"), NOW)

    assert paths(problems) == ["schedule.end_at"]
    assert "in the past" in problems[0].message


def test_end_before_the_first_fire_time_is_reported_on_end_at() -> None:
    problems = check_schedule(schedule("cron", "0 9 * * *", end_at="2026-01-01T13:00:00Z"), NOW)

    assert paths(problems) == ["schedule.end_at"]
    assert "2026-01-02T09:00:00Z" in problems[0].message


def test_every_problem_is_reported_at_once() -> None:
    made = schedule(
        "cron", "0 9 * *", "Mars/Olympus", start_at="2026-02-01T09:00:00Z", end_at="2026-01-01T09:00:00Z"
    )

    problems = check_schedule(made, NOW)

    assert paths(problems) == ["schedule.timezone", "schedule.expr", "schedule.end_at"]
    assert "unknown time zone 'Mars/Olympus'" in problems[0].message


@pytest.mark.parametrize(
    ("kind", "expr"),
    [("once", "2026-12-01T09:00"), ("interval", "PT15M"), ("cron", "*/5 * * * *"), ("rrule", "FREQ=HOURLY")],
)
def test_valid_schedules_of_every_kind_pass_the_check(kind: str, expr: str) -> None:
    assert check_schedule(schedule(kind, expr, "Europe/Paris"), NOW) == []


# --- the functions the engine calls ----------------------------------------------------------


def test_fire_times_are_utc_whole_seconds_and_strictly_increasing() -> None:
    made = schedule("cron", "*/7 * * * *", "America/New_York")

    times = upcoming_fire_times(made, NOW + timedelta(microseconds=999), 50)

    assert all(t.tzinfo == UTC and t.microsecond == 0 for t in times)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))


def test_fire_times_between_excludes_after_includes_until_and_honours_the_limit() -> None:
    made = schedule("cron", "0 * * * *")

    between = fire_times_between(made, NOW, utc(2026, 1, 1, 12), utc(2026, 1, 1, 15), 10)

    assert between == [utc(2026, 1, 1, 13), utc(2026, 1, 1, 14), utc(2026, 1, 1, 15)]
    assert fire_times_between(made, NOW, utc(2026, 1, 1, 12), utc(2026, 1, 1, 15), 2) == between[:2]
    assert fire_times_between(made, NOW, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 30), 10) == []
    assert count_fire_times_between(made, NOW, utc(2026, 1, 1, 12), utc(2026, 1, 1, 15)) == 3


def test_upcoming_fire_times_start_at_the_first_fire_time() -> None:
    made = schedule("interval", "PT10M")

    times = upcoming_fire_times(made, NOW, 3)

    assert times == [NOW + timedelta(minutes=10), NOW + timedelta(minutes=20), NOW + timedelta(minutes=30)]
    assert upcoming_fire_times(made, utc(2026, 1, 1, 13), 1, anchor=times[0]) == [utc(2026, 1, 1, 13)]


def test_naive_datetimes_are_refused() -> None:
    made = schedule("cron", "0 9 * * *")

    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_time(made, datetime(2026, 1, 1), NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        first_fire_time(made, datetime(2026, 1, 1))


def test_jitter_delays_by_at_most_the_jitter_and_zero_changes_nothing() -> None:
    rng = random.Random(7)

    delays = [apply_jitter(NOW, 30, rng) - NOW for _ in range(200)]

    assert all(timedelta(0) <= delay <= timedelta(seconds=30) for delay in delays)
    assert max(delays) > timedelta(seconds=20)
    assert apply_jitter(NOW, 0, rng) == NOW


def test_schedule_kind_values_are_the_json_names() -> None:
    assert [kind.value for kind in ScheduleKind] == ["once", "interval", "cron", "rrule", "manual"]


# --- descriptions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (
            {"kind": "cron", "expr": "0 9 * * 1-5", "timezone": "Europe/Paris"},
            "At 09:00, Monday through Friday (Europe/Paris)",
        ),
        ({"kind": "cron", "expr": "*/15 * * * *"}, "Every 15 minutes (UTC)"),
        ({"kind": "cron", "expr": "@daily"}, "At 00:00, every day (UTC)"),
        ({"kind": "cron", "expr": "@hourly"}, "Every hour (UTC)"),
        ({"kind": "cron", "expr": "0 0 1 * *"}, "At 00:00, on day 1 of the month (UTC)"),
        ({"kind": "cron", "expr": "30 8 * * 1,3"}, "At 08:30, on Monday and Wednesday (UTC)"),
        ({"kind": "cron", "expr": "0 9,17 * * *"}, "At 09:00 and 17:00, every day (UTC)"),
        ({"kind": "cron", "expr": "*/10 9-17 * * *"}, "Every 10 minutes, between 09:00 and 17:59 (UTC)"),
        ({"kind": "cron", "expr": "0 9 * * 1#2"}, "At 09:00, on the second Monday of the month (UTC)"),
        ({"kind": "cron", "expr": "0 0 1 1 *"}, "At 00:00, on day 1 of the month, in January (UTC)"),
        (
            {"kind": "cron", "expr": "30 9-17 * * 1-5"},
            "Every hour from 09:30 to 17:30, Monday through Friday (UTC)",
        ),
        ({"kind": "cron", "expr": "0 9 1 * 1"}, "At 09:00, on day 1 of the month or on Monday (UTC)"),
        ({"kind": "interval", "expr": "15m"}, "Every 15 minutes"),
        ({"kind": "interval", "expr": "PT1H30M"}, "Every 1 hour and 30 minutes"),
        ({"kind": "interval", "expr": "90s"}, "Every 90 seconds"),
        ({"kind": "interval", "expr": "1d", "timezone": "Europe/Paris"}, "Every day (Europe/Paris)"),
        ({"kind": "interval", "expr": "P2W"}, "Every 2 weeks (UTC)"),
        (
            {"kind": "once", "expr": "2026-12-01T09:00", "timezone": "Europe/Paris"},
            "Once at 2026-12-01 09:00 (Europe/Paris)",
        ),
        (
            {"kind": "rrule", "expr": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30"},
            "Every week on Monday and Wednesday at 08:30 (UTC)",
        ),
        (
            {"kind": "rrule", "expr": "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0;COUNT=6"},
            "Every month on the last Friday at 17:00, 6 times (UTC)",
        ),
        (
            {"kind": "rrule", "expr": "DTSTART:20260105T083000\nRRULE:FREQ=WEEKLY;COUNT=4"},
            "Every week on Monday at 08:30, starting 2026-01-05 08:30, 4 times (UTC)",
        ),
        ({"kind": "manual"}, "Manually (run_now only)"),
        (
            {
                "kind": "interval",
                "expr": "15m",
                "start_at": "2026-01-05T09:00",
                "end_at": "2026-01-06T18:00",
                "timezone": "Europe/Paris",
            },
            "Every 15 minutes, from 2026-01-05 09:00 until 2026-01-06 18:00 (Europe/Paris)",
        ),
        (
            {"kind": "cron", "expr": "0 9 * * *", "end_at": "2026-06-30T18:00:00Z"},
            "At 09:00, every day, until 2026-06-30 18:00 (UTC)",
        ),
    ],
)
def test_schedules_are_described_in_words(fields: dict[str, Any], text: str) -> None:
    assert describe_schedule(Schedule.model_validate(fields)) == text


def test_an_invalid_schedule_is_described_without_raising() -> None:
    assert describe_schedule(schedule("cron", "not a cron")) == "Invalid cron schedule 'not a cron' (UTC)"
    assert describe_schedule(schedule("cron", "0 9 * * *", "Mars/Base")).startswith("Invalid cron")

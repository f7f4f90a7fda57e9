"""Schedules: when a task fires. Pure functions of their arguments; `now` is always passed in.

Every fire time is an aware UTC datetime with whole seconds, and the fire times of a schedule are
strictly increasing (two rules that land on the same instant give one fire).

Kinds
- `once`: an ISO 8601 date-time; without an offset it is read in `timezone`.
- `interval`: an ISO 8601 duration (`PT15M`, `P1D`, `P1W`) or a shorthand (`90s`, `15m`, `1h30m`, `1d`,
  `1w`), at least 1 s. Hours, minutes and seconds are elapsed time; days and weeks are calendar days in
  `timezone`, so "every 1d" from 09:00 stays at 09:00 on the wall clock across DST. Months and years are
  rejected (their length varies; a cron or rrule says what is meant). Fire times are `origin + k *
  interval` (origin = `start_at`, else the moment the schedule was set, whose first fire is one
  interval later): a late run never shifts the grid, nor does a first fire moved by a DST gap.
- `cron`: 5 crontab fields (0 or 7 = Sunday, names allowed; hashed `H` and random `R` are not) or
  `@hourly @daily @midnight @weekly @monthly @yearly @annually`, mapped here to plain crontab.
- `rrule`: one RFC 5545 RRULE, optionally after a `DTSTART` line. Without DTSTART the rule's wall clock
  is anchored at `start_at`, else at the task's first fire time (seconds 0): what the rule leaves to
  DTSTART (time of day for DAILY, weekday for WEEKLY, ...) comes from there. A DTSTART or UNTIL given
  in UTC or with a TZID is converted to `timezone`'s wall clock; a date-only UNTIL includes that whole
  day. Only DTSTART and RRULE lines are accepted (no EXDATE/RDATE).
- `manual`: no fire times.
`start_at` and `end_at` bound the fire times, both inclusive.

Budget (SPEC §11)
- Computing fire times gives up after 0.5 s of work with `ScheduleTooCostly` ("schedule is too
  costly to compute: ..."), which `check_schedule` reports on `schedule.expr`; see `schedule_budget`.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from itertools import islice, takewhile
from typing import Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from orchestrator_mcp.domain import schedule_text
from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.recurrence import (
    SECOND,
    compile_cron,
    compile_rule,
    cron_stream,
    interval_at,
    interval_index,
    interval_stream,
    once_instant,
    resolve_wall,
    rule_stream,
    wall_time,
)
from orchestrator_mcp.domain.schedule_budget import (
    FIRE_TIME_SECONDS,
    ScheduleTooCostly,
    computing,
    fire_time_budget,
)
from orchestrator_mcp.domain.schedule_budget import check as check_deadline
from orchestrator_mcp.domain.schedule_text import Duration, parse_duration

__all__ = [
    "FIRE_TIME_SECONDS",
    "Duration",
    "Schedule",
    "ScheduleKind",
    "ScheduleTooCostly",
    "apply_jitter",
    "check_schedule",
    "count_fire_times_between",
    "fire_time_budget",
    "fire_times_between",
    "first_fire_time",
    "next_fire_time",
    "parse_duration",
    "schedule_anchor",
    "upcoming_fire_times",
]

_zone = schedule_text.zone_named

P = ParamSpec("P")
T = TypeVar("T")


class ScheduleKind(StrEnum):
    """What `Schedule.expr` holds."""

    ONCE = "once"
    INTERVAL = "interval"
    CRON = "cron"
    RRULE = "rrule"
    MANUAL = "manual"


class Schedule(BaseModel):
    """When a task fires. Naive `start_at`/`end_at` are read in `timezone` and stored in UTC."""

    model_config = ConfigDict(extra="forbid")

    kind: ScheduleKind = Field(
        description="How `expr` is read: 'once' (one date-time), 'interval' (a repeating duration), "
        "'cron' (5-field crontab), 'rrule' (RFC 5545 recurrence rule) or 'manual' (runs only through "
        "run_now). Example: 'cron'."
    )
    expr: str = Field(
        "",
        max_length=1000,
        description="The schedule itself. once: ISO 8601 date-time, read in `timezone` when it has no "
        "offset ('2026-12-01T09:00'). interval: ISO 8601 duration or shorthand, at least 1 second "
        "('PT15M', '90s', '1h30m', '1d'). cron: 5 fields minute hour day-of-month month day-of-week, "
        "0 or 7 = Sunday ('0 9 * * 1-5' = 09:00 Monday to Friday), or @hourly/@daily/@weekly/@monthly/"
        "@yearly. rrule: 'FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30', optionally after a "
        "'DTSTART:20260105T083000' line. manual: empty. Example: '0 9 * * 1-5'.",
    )
    timezone: str = Field(
        "UTC",
        max_length=64,
        description="IANA time zone whose wall clock cron, rrule, once and day-based intervals follow, "
        "DST included. Example: 'Europe/Paris'.",
    )
    start_at: datetime | None = Field(
        None,
        description="Optional first instant at which the task may fire (inclusive). RFC 3339; without an "
        "offset it is read in `timezone`. Intervals count from it. Example: '2026-01-05T09:00:00Z'.",
    )
    end_at: datetime | None = Field(
        None,
        description="Optional last instant at which the task may fire (inclusive); after it the task is "
        "completed. RFC 3339; without an offset it is read in `timezone`. Example: "
        "'2026-12-31T18:00:00+01:00'.",
    )
    jitter_seconds: int = Field(
        0,
        ge=0,
        le=3600,
        description="Delay each run by a random 0..jitter_seconds after its fire time, to spread load "
        "(0 to 3600, default 0). Example: 30.",
    )

    @field_validator("start_at", "end_at")
    @classmethod
    def _bound_in_utc(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = value.replace(microsecond=0)
        if value.tzinfo is None:
            # An unknown zone is reported by check_schedule; read the value as UTC meanwhile.
            zone = _zone(str(info.data.get("timezone", "UTC"))) or ZoneInfo("UTC")
            return resolve_wall(value, zone)
        return value.astimezone(UTC)


def _budgeted(compute: Callable[Concatenate[Schedule, P], T]) -> Callable[Concatenate[Schedule, P], T]:
    """`compute` within a `fire_time_budget` (its own, unless one is open), interrupted from inside
    dateutil for an rrule."""

    @functools.wraps(compute)
    def within(schedule: Schedule, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with computing(schedule.kind == ScheduleKind.RRULE):
            return compute(schedule, *args, **kwargs)

    return within


# --- helpers -------------------------------------------------------------------------------


def _zone_of(schedule: Schedule) -> ZoneInfo:
    zone = _zone(schedule.timezone)
    if zone is None:
        raise ValueError(f"unknown time zone '{schedule.timezone}'")
    return zone


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _rule_anchor(schedule: Schedule, anchor: datetime, zone: ZoneInfo) -> datetime | None:
    if schedule_text.parse_rule_text(schedule.expr).dtstart is not None:
        return None
    return wall_time(schedule.start_at or anchor, zone).replace(second=0, microsecond=0)


# --- the fire times of a schedule ------------------------------------------------------------


def _stream(schedule: Schedule, after: datetime, anchor: datetime) -> Iterator[datetime]:
    """Fire times after `after`, within start_at/end_at, strictly increasing."""
    zone = _zone_of(schedule)
    if schedule.start_at is not None and schedule.start_at - SECOND > after:
        after = schedule.start_at - SECOND
    times: Iterator[datetime]
    if schedule.kind == ScheduleKind.ONCE:
        times = iter([once_instant(schedule.expr, zone)])
    elif schedule.kind == ScheduleKind.INTERVAL:
        times = interval_stream(schedule.start_at or anchor, after, parse_duration(schedule.expr), zone)
    elif schedule.kind == ScheduleKind.CRON:
        times = cron_stream(compile_cron(schedule.expr), after, zone)
    elif schedule.kind == ScheduleKind.RRULE:
        rule = compile_rule(schedule.expr, schedule.timezone, _rule_anchor(schedule, anchor, zone))
        times = rule_stream(rule, after, zone)
    else:
        times = iter([])
    last = after
    try:
        for time in times:
            check_deadline()
            if schedule.end_at is not None and time > schedule.end_at:
                return
            if time > last:
                yield time
                last = time
    except OverflowError:  # past year 9999
        return


@_budgeted
def first_fire_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The first fire time of a task created at `now` (whole seconds; fire times >= now count).

    once: its instant; interval: `start_at` (or, if that is past, the first time on its grid >= now),
    else now + interval; cron and rrule: the first fire >= max(now, start_at); manual: None. None also
    when nothing is left before `end_at`.

    Raises:
        ValueError: `now` is naive, or the schedule does not pass `check_schedule`.
    """
    now = _utc(now, "now").replace(microsecond=0)
    if schedule.kind == ScheduleKind.INTERVAL and schedule.start_at is None:
        first = interval_at(now, 1, parse_duration(schedule.expr), _zone_of(schedule))
        return first if schedule.end_at is None or first <= schedule.end_at else None
    return next(_stream(schedule, now - SECOND, now), None)


def schedule_anchor(schedule: Schedule, now: datetime, first: datetime | None) -> datetime | None:
    """The anchor a task keeps from a schedule set at `now` whose `first_fire_time` is `first`; None
    when it would never fire.

    An interval without `start_at` is anchored at `now` itself: its fire times are now + k intervals,
    k >= 1 (the first is `first`), so a first fire that a DST gap moved (a daily 02:30 on the day
    02:00-03:00 is skipped fires at 03:00) does not move the later ones. Every other schedule is
    anchored at its first fire time.
    """
    if first is not None and schedule.kind == ScheduleKind.INTERVAL and schedule.start_at is None:
        return _utc(now, "now").replace(microsecond=0)
    return first


@_budgeted
def next_fire_time(schedule: Schedule, after: datetime, anchor: datetime) -> datetime | None:
    """The smallest fire time strictly after `after`, or None when there are no more.

    `anchor` is the task's `schedule_anchor`: interval fire times are `start_at` (else `anchor`) plus
    whole intervals, however late the previous run was; an rrule without DTSTART and start_at takes
    its wall clock from it.

    Raises:
        ValueError: a naive datetime, or a schedule that does not pass `check_schedule`.
    """
    return next(_stream(schedule, _utc(after, "after"), _utc(anchor, "anchor")), None)


@_budgeted
def fire_times_between(
    schedule: Schedule, anchor: datetime, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The fire times t with `after` < t <= `until`, ascending, at most `limit` of them."""
    until = _utc(until, "until")
    times = _stream(schedule, _utc(after, "after"), _utc(anchor, "anchor"))
    return list(islice(takewhile(lambda t: t <= until, times), max(limit, 0)))


@_budgeted
def count_fire_times_between(
    schedule: Schedule, anchor: datetime, after: datetime, until: datetime, cap: int = 1_000_000
) -> int:
    """How many fire times t have `after` < t <= `until`, counting no further than `cap`.

    Arithmetic for intervals, and day by day for most crons, so a task asleep for a year is cheap.
    """
    after, until, anchor = _utc(after, "after"), _utc(until, "until"), _utc(anchor, "anchor")
    if schedule.start_at is not None:
        after = max(after, schedule.start_at - SECOND)
    if schedule.end_at is not None:
        until = min(until, schedule.end_at)
    if until <= after:
        return 0
    if schedule.kind == ScheduleKind.INTERVAL:
        step, origin, zone = parse_duration(schedule.expr), schedule.start_at or anchor, _zone_of(schedule)
        count = interval_index(origin, until, step, zone) - interval_index(origin, after, step, zone)
    elif schedule.kind == ScheduleKind.CRON:
        count = _cron_count(schedule, anchor, after, until, cap)
    else:
        count = _count_streamed(schedule, anchor, after, until, cap)
    return min(max(count, 0), cap)


def _count_streamed(schedule: Schedule, anchor: datetime, after: datetime, until: datetime, cap: int) -> int:
    return sum(1 for _ in islice(takewhile(lambda t: t <= until, _stream(schedule, after, anchor)), cap))


def _cron_count(schedule: Schedule, anchor: datetime, after: datetime, until: datetime, cap: int) -> int:
    """Whole days without a DST change count by arithmetic; the two ends and DST days are streamed."""
    zone = _zone_of(schedule)
    (minutes, hours, days, months, weekdays), nth = croniter.expand(compile_cron(schedule.expr).expr)
    first, last = wall_time(after, zone).date() + timedelta(days=1), wall_time(until, zone).date()
    if nth or "l" in days or (last - first).days < 3:  # L and # make days irregular
        return _count_streamed(schedule, anchor, after, until, cap)
    per_day = (60 if minutes == ["*"] else len(minutes)) * (24 if hours == ["*"] else len(hours))
    either = days != ["*"] and weekdays != ["*"]  # cron: both day fields restricted = either matches

    def start(day: date) -> datetime:  # one second before the day's first instant
        return resolve_wall(datetime.combine(day, datetime.min.time()), zone) - SECOND

    count, day = _count_streamed(schedule, anchor, after, start(first), cap), first
    while day < last and count < cap:
        check_deadline()
        following = day + timedelta(days=1)
        if start(following) - start(day) != timedelta(days=1):  # a DST change inside the day
            count += _count_streamed(schedule, anchor, start(day), start(following), cap)
        elif months == ["*"] or day.month in months:
            in_month, in_week = (
                days == ["*"] or day.day in days,
                weekdays == ["*"] or day.isoweekday() % 7 in weekdays,
            )
            count += per_day if (in_month or in_week if either else in_month and in_week) else 0
        day = following
    return count + _count_streamed(schedule, anchor, start(last), until, cap)


@_budgeted
def upcoming_fire_times(
    schedule: Schedule, now: datetime, count: int, anchor: datetime | None = None
) -> list[datetime]:
    """The next `count` fire times >= now of a task with this `anchor`, by default of one whose
    schedule is set at `now` (its first fire time, then the rest from its `schedule_anchor`)."""
    now = _utc(now, "now").replace(microsecond=0)
    after = now - SECOND
    if anchor is None:
        first = first_fire_time(schedule, now)
        anchor = schedule_anchor(schedule, now, first)
        if first is None or anchor is None:
            return []
        after = first - SECOND
    return list(islice(_stream(schedule, after, _utc(anchor, "anchor")), max(count, 0)))


def apply_jitter(fire_time: datetime, jitter_seconds: int, rng: random.Random) -> datetime:
    """`fire_time` delayed by a uniform random 0..`jitter_seconds` (unchanged, rng untouched, if 0)."""
    if jitter_seconds <= 0:
        return fire_time
    return fire_time + timedelta(seconds=rng.uniform(0, jitter_seconds))


# --- validation ------------------------------------------------------------------------------


def _check_expr(schedule: Schedule, zone: ZoneInfo, now: datetime) -> str | None:
    """What is wrong with `expr` for its kind, or None."""
    try:
        if schedule.kind == ScheduleKind.MANUAL and schedule.expr.strip():
            return "must be empty for a manual schedule (it runs only through run_now)"
        if schedule.kind == ScheduleKind.ONCE:
            once_instant(schedule.expr, zone)
        elif schedule.kind == ScheduleKind.INTERVAL:
            parse_duration(schedule.expr)
        elif schedule.kind == ScheduleKind.CRON:
            compile_cron(schedule.expr)
        elif schedule.kind == ScheduleKind.RRULE:
            compile_rule(schedule.expr, zone.key, _rule_anchor(schedule, now, zone))
    except ValueError as exc:
        return str(exc)
    return None


_NEVER_AGAIN = {
    ScheduleKind.CRON: "no date matches it from now on (like 31 February)",
    ScheduleKind.RRULE: "no occurrence from now on (COUNT or UNTIL exhausted, or no date matches)",
}


def _never_again(schedule: Schedule, now: datetime) -> Problem | None:
    if schedule.end_at is not None and schedule.end_at < now:
        return Problem(
            "schedule.end_at", f"{_rfc3339(schedule.end_at)} is in the past: the task would never fire"
        )
    if schedule.kind == ScheduleKind.MANUAL or first_fire_time(schedule, now) is not None:
        return None
    unbounded = first_fire_time(schedule.model_copy(update={"end_at": None}), now)
    if unbounded is not None:
        return Problem(
            "schedule.end_at", f"is before the first fire time {_rfc3339(unbounded)}: nothing would fire"
        )
    if schedule.kind == ScheduleKind.ONCE:
        instant = once_instant(schedule.expr, ZoneInfo(schedule.timezone))
        if schedule.start_at and instant < schedule.start_at:
            return Problem("schedule.start_at", f"is after the only fire time {_rfc3339(instant)}")
        why = f"{_rfc3339(instant)} is in the past (now is {_rfc3339(now)})"
    else:
        why = _NEVER_AGAIN.get(schedule.kind, "no fire time from now on")
    return Problem("schedule.expr", f"can never fire again: {why}")


def check_schedule(schedule: Schedule, now: datetime) -> list[Problem]:
    """Every semantic problem of a schedule at once, with paths under `schedule`; [] when it is valid.

    Covers the time zone, `expr` for its kind, start_at < end_at, a schedule that can never fire
    again (a past `once`, `0 9 31 2 *`, an exhausted rrule, an `end_at` in the past), and one whose
    fire times are too costly to compute.

    Raises:
        ValueError: `now` is naive.
    """
    now = _utc(now, "now").replace(microsecond=0)
    try:
        with computing(schedule.kind == ScheduleKind.RRULE):
            return _problems(schedule, now)
    except ScheduleTooCostly as error:
        return [Problem("schedule.expr", str(error))]


def _problems(schedule: Schedule, now: datetime) -> list[Problem]:
    problems: list[Problem] = []
    zone = _zone(schedule.timezone)
    if zone is None:
        why = "expected an IANA name like 'Europe/Paris' or 'UTC'"
        problems.append(Problem("schedule.timezone", f"unknown time zone '{schedule.timezone}': {why}"))
    message = _check_expr(schedule, zone or ZoneInfo("UTC"), now)
    if message:
        problems.append(Problem("schedule.expr", message))
    if schedule.start_at and schedule.end_at and schedule.end_at <= schedule.start_at:
        problems.append(Problem("schedule.end_at", f"must be after start_at ({_rfc3339(schedule.start_at)})"))
    if not problems:
        problem = _never_again(schedule, now)
        problems.extend([problem] if problem else [])
    return problems


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

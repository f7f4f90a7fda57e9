"""Fire-time streams of each schedule kind, evaluated on the wall clock of a time zone.

Pure functions. A naive datetime here is a wall time in the zone given beside it; what comes out is
an aware UTC instant. The DST rules they implement are described in `schedule`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from dateutil import rrule as rr

from orchestrator_mcp.domain import schedule_text
from orchestrator_mcp.domain.schedule_text import Duration

SECOND = timedelta(seconds=1)


# --- wall clock ------------------------------------------------------------------------------


def _offsets(wall: datetime, zone: ZoneInfo) -> tuple[timedelta, timedelta]:
    """UTC offsets of a naive wall time at fold 0 and 1: equal if normal, o0 > o1 if repeated, o0 < o1 if
    skipped (PEP 495)."""
    first = wall.replace(tzinfo=zone).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    return first, second


def _gap_end(wall: datetime, zone: ZoneInfo, before: timedelta, after: timedelta) -> datetime:
    """The instant a spring-forward gap holding `wall` ends (bisection on the zone's offset)."""
    low, high = (wall - after).replace(tzinfo=UTC), (wall - before).replace(tzinfo=UTC)
    while high - low > SECOND:
        middle = low + (high - low) // 2
        middle -= timedelta(microseconds=middle.microsecond)
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def resolve_wall(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a naive wall time: first occurrence if repeated, end of the gap if skipped."""
    first, second = _offsets(wall, zone)
    if first < second:
        return _gap_end(wall, zone, first, second)
    return (wall - first).replace(tzinfo=UTC)


def wall_time(value: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall time in `zone` (naive input is already one)."""
    return value if value.tzinfo is None else value.astimezone(zone).replace(tzinfo=None)


# --- once ------------------------------------------------------------------------------------


def once_instant(expr: str, zone: ZoneInfo) -> datetime:
    value = schedule_text.parse_once(expr)
    return resolve_wall(value, zone) if value.tzinfo is None else value.astimezone(UTC)


# --- interval --------------------------------------------------------------------------------


def interval_at(origin: datetime, k: int, step: Duration, zone: ZoneInfo) -> datetime:
    if k == 0 or step.days == 0:
        return origin + k * step.nominal
    wall = wall_time(origin, zone) + timedelta(days=k * step.days)
    return resolve_wall(wall, zone) + timedelta(seconds=k * step.seconds)


def interval_index(origin: datetime, after: datetime, step: Duration, zone: ZoneInfo) -> int:
    """The smallest k >= 0 whose fire time is after `after`."""
    if after < origin:
        return 0
    k = (after - origin) // step.nominal + 1
    if step.days:  # calendar days: DST moves the estimate by at most a step or two
        while k > 0 and interval_at(origin, k - 1, step, zone) > after:
            k -= 1
        while interval_at(origin, k, step, zone) <= after:
            k += 1
    return k


def interval_stream(origin: datetime, after: datetime, step: Duration, zone: ZoneInfo) -> Iterator[datetime]:
    k = interval_index(origin, after, step, zone)
    while True:
        yield interval_at(origin, k, step, zone)
        k += 1


# --- cron ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cron:
    expr: str  # five plain fields
    hour_repeats: bool  # hour field starts with '*': fires through the repeated hour, skips the gap


@functools.lru_cache(maxsize=2048)
def compile_cron(expr: str) -> Cron:
    fields = schedule_text.normalise_cron(expr)
    return Cron(fields, fields.split()[1].startswith("*"))


def _cron_walls(cron: Cron, start: datetime) -> Iterator[datetime]:
    """Naive wall times matching the fields, from `start` (inclusive) on."""
    walls = croniter(cron.expr, start - SECOND)
    while True:
        try:
            wall: datetime = walls.get_next(datetime)
        except (CroniterBadDateError, OverflowError):
            return
        yield wall


def cron_stream(cron: Cron, after: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    start = wall_time(after, zone)
    if not cron.hour_repeats:
        yield from (resolve_wall(wall, zone) for wall in _cron_walls(cron, start))
        return
    first, second = _offsets(start, zone)
    if first > second:  # inside a repeated hour: its first pass may still lie ahead
        start -= first - second
    walls = _cron_walls(cron, start)
    wall = next(walls, None)
    while wall is not None:
        first, second = _offsets(wall, zone)
        if first == second:
            yield (wall - first).replace(tzinfo=UTC)
        if first <= second:  # normal, or skipped by a gap
            wall = next(walls, None)
            continue
        block = [wall]  # the repeated hour: every match at fold 0, then every match at fold 1
        wall = next(walls, None)
        while (
            wall is not None and wall - block[0] < first - second and _offsets(wall, zone) == (first, second)
        ):
            block.append(wall)
            wall = next(walls, None)
        yield from ((w - first).replace(tzinfo=UTC) for w in block)
        yield from ((w - second).replace(tzinfo=UTC) for w in block)


# --- rrule -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    rule: rr.rrule
    dtstart: datetime  # naive wall time
    freq: int
    interval: int
    wkst: int
    counted: bool
    pins: tuple[tuple[str, Any], ...]  # dateutil's DTSTART-derived defaults, stated explicitly


@functools.lru_cache(maxsize=1024)
def compile_rule(text: str, zone_name: str, fallback: datetime | None) -> Rule:
    spec = schedule_text.parse_rule_text(text)
    zone = ZoneInfo(zone_name)
    dtstart = wall_time(spec.dtstart, zone) if spec.dtstart else fallback
    assert dtstart is not None, "an rrule without DTSTART needs an anchor"
    params = dict(spec.params)
    params.setdefault("WKST", "MO")  # dateutil would read calendar.firstweekday()
    body = ";".join(f"{key}={value}" for key, value in params.items())
    try:
        # No dateutil cache, even for COUNT: a computation stopped by its budget inside dateutil
        # would leave a shared cache half-built (or its lock held); each iteration starts afresh.
        rule = rr.rrulestr(body, dtstart=dtstart)
        assert isinstance(rule, rr.rrule)
        if spec.until:
            rule = rule.replace(until=wall_time(spec.until, zone))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"invalid RRULE ({exc}): {schedule_text.RULE_HINT}") from None
    freq = int(rr.FREQNAMES.index(params["FREQ"]))
    pins: dict[str, Any] = {}
    for key, level, value in (("BYHOUR", rr.HOURLY, dtstart.hour), ("BYMINUTE", rr.MINUTELY, dtstart.minute)):
        if freq < level and key not in params:
            pins[key.lower()] = value
    if freq < rr.SECONDLY and "BYSECOND" not in params:
        pins["bysecond"] = dtstart.second
    if not {"BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYEASTER"} & params.keys():
        if freq == rr.YEARLY and "BYMONTH" not in params:
            pins["bymonth"] = dtstart.month
        if freq in (rr.YEARLY, rr.MONTHLY):
            pins["bymonthday"] = dtstart.day
        if freq == rr.WEEKLY:
            pins["byweekday"] = dtstart.weekday()
    interval, wkst = int(params.get("INTERVAL", "1")), schedule_text.RULE_WEEKDAYS.index(params["WKST"])
    return Rule(rule, dtstart, freq, interval, wkst, "COUNT" in params, tuple(pins.items()))


@functools.lru_cache(maxsize=1024)
def _rebased(rule: Rule, start: datetime) -> rr.rrule:
    return rule.rule.replace(dtstart=start, **dict(rule.pins))


def _rule_from(rule: Rule, wall: datetime) -> rr.rrule:
    """An equivalent rule whose DTSTART is a whole number of periods after the original and at most
    `wall`, so dateutil does not walk from a DTSTART years ago. COUNT rules must start where they start."""
    base, start, freq, interval = rule.rule, rule.dtstart, rule.freq, rule.interval
    if rule.counted or wall <= start:
        return base
    if freq in (rr.YEARLY, rr.MONTHLY):
        months = interval * (12 if freq == rr.YEARLY else 1)
        origin = start.replace(
            month=1 if freq == rr.YEARLY else start.month, day=1, hour=0, minute=0, second=0
        )
        k = ((wall.year - origin.year) * 12 + wall.month - origin.month) // months
        total = origin.month - 1 + k * months
        moved = origin.replace(year=origin.year + total // 12, month=total % 12 + 1)
    elif freq in (rr.WEEKLY, rr.DAILY):
        days = interval * (7 if freq == rr.WEEKLY else 1)
        origin = start.replace(hour=0, minute=0, second=0)
        if freq == rr.WEEKLY:
            origin -= timedelta(days=(start.weekday() - rule.wkst) % 7)
        k = (wall - origin).days // days
        moved = origin + timedelta(days=k * days)
    else:
        unit = {rr.HOURLY: 3600, rr.MINUTELY: 60}.get(freq, 1)
        origin = start.replace(
            minute=0 if unit == 3600 else start.minute, second=0 if unit > 1 else start.second
        )
        k = int((wall - origin).total_seconds()) // (unit * interval)
        moved = origin + timedelta(seconds=k * unit * interval)
    return base if k < 1 else _rebased(rule, moved)


def rule_stream(rule: Rule, after: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    start = wall_time(after, zone)
    yield from (resolve_wall(wall, zone) for wall in _rule_from(rule, start).xafter(start, inc=True))

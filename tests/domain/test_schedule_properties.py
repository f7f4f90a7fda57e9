"""Properties of fire times, checked on random schedules, zones and instants.

The cron reference is brute force: every UTC minute of a window is converted to the zone's wall clock
and matched against the fields, then the module's DST rule is applied (fixed hours fire at the first
occurrence of a repeated time and at the end of a gap; `*` hours fire at every elapsed match).
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator_mcp.domain.schedule import (
    Schedule,
    count_fire_times_between,
    fire_times_between,
    next_fire_time,
    upcoming_fire_times,
)

ZONES = sorted(zoneinfo.available_timezones())
DST_ZONES = [
    "America/New_York",
    "Europe/Paris",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Havana",
    "America/St_Johns",
    "Pacific/Chatham",
    "Antarctica/Troll",
    "Africa/Casablanca",
    "Asia/Tehran",
    "Pacific/Apia",
]
MINUTE = ["0", "30", "*/15", "5,35", "*/7", "59", "*"]
HOUR = ["*", "0", "1", "2", "3", "*/2", "1-3", "0,12", "23", "*/5"]
DAY = ["*", "*", "1", "15", "1-7", "31"]
MONTH = ["*", "*", "3", "10,11", "*/2"]
WEEKDAY = ["*", "*", "1-5", "0", "6,0", "MON"]

cron_exprs = st.tuples(*(st.sampled_from(field) for field in (MINUTE, HOUR, DAY, MONTH, WEEKDAY))).map(
    " ".join
)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
fast = settings(max_examples=100, deadline=None)


def matches(expr: str, wall: datetime) -> bool:
    """Whether a wall time matches the fields (standard cron: two restricted day fields = either)."""
    minutes, hours, days, months, weekdays = _fields(expr)
    in_month = days is None or wall.day in days
    in_week = weekdays is None or wall.isoweekday() % 7 in weekdays
    on_day = (in_month or in_week) if days is not None and weekdays is not None else in_month and in_week
    return (
        on_day
        and (minutes is None or wall.minute in minutes)
        and (hours is None or wall.hour in hours)
        and (months is None or wall.month in months)
    )


@functools.lru_cache(maxsize=1024)
def _fields(expr: str) -> tuple[frozenset[int] | None, ...]:
    """Each field's values from croniter's parser, None for `*`."""
    expanded, _ = croniter.expand(expr)
    return tuple(None if field == ["*"] else frozenset(int(v) for v in field) for field in expanded)


def offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    value = moment.astimezone(zone).utcoffset()
    assert value is not None
    return value


@functools.lru_cache(maxsize=256)
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The instants in `year` at which the zone's UTC offset changes (sampled every 6 h, then bisected)."""
    zone, found = ZoneInfo(zone_name), []
    moment, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    while moment < end:
        following = moment + timedelta(hours=6)
        if offset(moment, zone) != offset(following, zone):
            low, high = moment, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) // 2
                low, high = (middle, high) if offset(middle, zone) == offset(low, zone) else (low, middle)
            found.append(high)
        moment = following
    return tuple(found)


def reference_cron(expr: str, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """Brute force: the fire times in (after, until] under the module's DST rule."""
    repeats = expr.split()[1].startswith("*")
    times: set[datetime] = set()
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment <= until:
        local = moment.astimezone(zone)
        if matches(expr, local.replace(tzinfo=None)) and (repeats or local.fold == 0):
            times.add(moment)
        before, now = offset(moment - timedelta(minutes=1), zone), offset(moment, zone)
        if not repeats and now > before:  # `moment` ends a gap: a matching skipped wall time fires now
            gap_start = (moment + before).replace(tzinfo=None)
            skipped = (
                gap_start + timedelta(minutes=m) for m in range((now - before) // timedelta(minutes=1))
            )
            if any(matches(expr, wall) for wall in skipped):
                times.add(moment)
        moment += timedelta(minutes=1)
    return sorted(times)


@fast
@given(
    expr=cron_exprs,
    zone_name=st.sampled_from(ZONES),
    now=instants,
    start_delay=st.integers(0, 40 * 86400),
    length=st.integers(1, 400 * 86400),
)
def test_cron_fire_times_increase_stay_in_bounds_and_match_the_fields_on_the_wall_clock(
    expr: str, zone_name: str, now: datetime, start_delay: int, length: int
) -> None:
    start = now + timedelta(seconds=start_delay)
    made = Schedule(
        kind="cron", expr=expr, timezone=zone_name, start_at=start, end_at=start + timedelta(seconds=length)
    )
    zone = ZoneInfo(zone_name)

    times = upcoming_fire_times(made, now, 25)

    assert all(t.tzinfo == UTC and t.microsecond == 0 for t in times)
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert made.start_at is not None and made.end_at is not None
    assert all(made.start_at <= t <= made.end_at and t >= now.replace(microsecond=0) for t in times)
    for t in times:
        wall = t.astimezone(zone).replace(tzinfo=None)
        ends_gap = offset(t - timedelta(seconds=1), zone) < offset(t, zone)
        assert matches(expr, wall) or (ends_gap and not expr.split()[1].startswith("*")), (t, wall)
    if not expr.split()[1].startswith("*"):
        walls = [t.astimezone(zone).replace(tzinfo=None) for t in times]
        assert len(set(walls)) == len(walls)  # a fixed time never fires twice in a repeated hour


@fast
@given(
    expr=cron_exprs,
    zone_name=st.sampled_from(DST_ZONES) | st.sampled_from(ZONES),
    year=st.integers(1995, 2045),
    pick=st.integers(0, 10),
    shift_minutes=st.integers(-300, 300),
)
def test_cron_fire_times_around_dst_changes_equal_a_brute_force_reference(
    expr: str, zone_name: str, year: int, pick: int, shift_minutes: int
) -> None:
    changes = transitions(zone_name, year) or (datetime(year, 6, 1, tzinfo=UTC),)
    middle = changes[pick % len(changes)] + timedelta(minutes=shift_minutes)
    after, until = middle - timedelta(hours=6), middle + timedelta(hours=6)
    made = Schedule(kind="cron", expr=expr, timezone=zone_name)

    times = fire_times_between(made, after, after, until, 10_000)

    assert times == reference_cron(expr, ZoneInfo(zone_name), after, until)
    assert count_fire_times_between(made, after, after, until) == len(times)


@fast
@given(
    seconds=st.integers(1, 10 * 86400),
    anchor=instants,
    late=st.integers(0, 400 * 86400),
    zone_name=st.sampled_from(ZONES),
)
def test_elapsed_interval_fire_times_are_the_anchor_plus_whole_intervals(
    seconds: int, anchor: datetime, late: int, zone_name: str
) -> None:
    anchor = anchor.replace(microsecond=0)
    made = Schedule(kind="interval", expr=f"{seconds}s", timezone=zone_name)
    step = timedelta(seconds=seconds)
    after = anchor + timedelta(seconds=late)

    times = fire_times_between(made, anchor, after, after + 20 * step, 20)

    assert len(times) == 20
    assert all((t - anchor) % step == timedelta(0) for t in times)
    assert times[0] > after >= times[0] - step
    assert all(b - a == step for a, b in zip(times, times[1:], strict=False))
    assert next_fire_time(made, after, anchor) == times[0]
    assert count_fire_times_between(made, anchor, after, times[-1]) == 20


@fast
@given(days=st.integers(1, 15), start=instants, zone_name=st.sampled_from(DST_ZONES) | st.sampled_from(ZONES))
def test_day_intervals_keep_the_wall_clock_time_of_their_start(
    days: int, start: datetime, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    made = Schedule(kind="interval", expr=f"P{days}D", timezone=zone_name, start_at=start)
    assert made.start_at is not None
    first_wall = made.start_at.astimezone(zone).replace(tzinfo=None)

    times = upcoming_fire_times(made, made.start_at, 30)

    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    for k, t in enumerate(times):
        wall = first_wall + timedelta(days=k * days)
        exists = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
        if exists:
            assert t.astimezone(zone).replace(tzinfo=None) == wall
        else:  # a skipped wall time fires when the gap ends
            assert offset(t - timedelta(seconds=1), zone) < offset(t, zone)


RULE_PARTS = {
    "YEARLY": ["", ";BYMONTH=3,9", ";BYMONTH=2;BYMONTHDAY=29", ";BYDAY=20MO", ";BYWEEKNO=10;BYDAY=TU"],
    "MONTHLY": [
        "",
        ";BYMONTHDAY=31",
        ";BYDAY=1MO,-1FR",
        ";BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        ";BYMONTHDAY=-3",
    ],
    "WEEKLY": ["", ";BYDAY=MO,WE", ";BYDAY=SU;WKST=SU", ";BYDAY=TU,SA;WKST=SU"],
    "DAILY": ["", ";BYHOUR=7,19", ";BYDAY=SA,SU", ";BYMONTH=2"],
    "HOURLY": ["", ";BYMINUTE=15,45", ";BYHOUR=8,9,10", ";BYDAY=MO"],
    "MINUTELY": ["", ";BYSECOND=30", ";BYHOUR=9;BYMINUTE=0,10,20"],
}


@fast
@given(
    freq=st.sampled_from(sorted(RULE_PARTS)),
    data=st.data(),
    interval=st.integers(1, 5),
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1)),
    back=st.integers(0, 10**6),
)
def test_rrule_fire_times_equal_dateutil_walking_from_the_original_dtstart(
    freq: str, data: st.DataObject, interval: int, now: datetime, back: int
) -> None:
    now = now.replace(microsecond=0)
    frequent = freq in ("HOURLY", "MINUTELY")
    dtstart = (now - timedelta(seconds=back // 10 if frequent else back * 200)).replace(second=0)
    body = f"FREQ={freq};INTERVAL={interval}" + data.draw(st.sampled_from(RULE_PARTS[freq]))
    text = f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{body}"
    try:
        expected = [t.replace(tzinfo=UTC) for t in rrulestr(text).xafter(now, count=6, inc=True)]
    except ValueError:  # e.g. BYMINUTE off the INTERVAL grid of a MINUTELY rule
        assume(False)
    made = Schedule(kind="rrule", expr=text, timezone="UTC")

    times = upcoming_fire_times(made, now.replace(tzinfo=UTC), 6, anchor=dtstart.replace(tzinfo=UTC))

    assert times == expected

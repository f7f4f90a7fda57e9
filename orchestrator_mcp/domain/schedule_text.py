"""Schedule expressions as text: reading what people write, and describing schedules back in words.

Parsing here is syntax only (durations, crontab fields, RRULE lines, ISO date-times); what the parsed
pieces mean in time is `schedule.py`'s business. The `describe_*` functions return English for people
("At 09:00, Monday through Friday", "Every week on Monday and Wednesday at 08:30").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

MAX_INTERVAL_DAYS = 3660
CRON_HINT = "expected a 5-field crontab like '0 9 * * 1-5' or @hourly/@daily/@weekly/@monthly/@yearly"
RULE_HINT = "expected an RFC 5545 rule like 'FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30'"
RULE_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@functools.lru_cache(maxsize=512)
def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone called `name`, or None if there is none."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def parse_once(text: str) -> datetime:
    """An ISO 8601 date-time with a time part, microseconds dropped; naive when it has no offset.

    Raises:
        ValueError: not a date-time.
    """
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or not re.search(r"\d[T ]\d", text, re.IGNORECASE):
        raise ValueError(
            f"'{text}' is not a date-time: expected ISO 8601 like '2026-12-01T09:00' (read in the "
            "schedule's timezone) or with an offset like '2026-12-01T09:00:00Z'"
        )
    return value.replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Duration:
    """An interval: whole calendar days (in the schedule's zone) plus elapsed seconds."""

    days: int = 0
    seconds: int = 0

    @property
    def nominal(self) -> timedelta:
        """The length when no DST change falls inside it."""
        return timedelta(days=self.days, seconds=self.seconds)


_ISO_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?",
    re.IGNORECASE,
)
_SHORT_DURATION = re.compile(
    r"(?:(?P<weeks>\d+)\s*w)?\s*(?:(?P<days>\d+)\s*d)?\s*(?:(?P<hours>\d+)\s*h)?\s*"
    r"(?:(?P<minutes>\d+)\s*m)?\s*(?:(?P<seconds>\d+)\s*s)?",
    re.IGNORECASE,
)


def parse_duration(text: str) -> Duration:
    """Read an interval: ISO 8601 (`PT15M`, `P1D`, `P1W`, `PT1H30M`) or shorthand (`90s`, `1h30m`, `1w`).

    Raises:
        ValueError: not a duration, months or years, a fraction of a second, under 1 s or over 3660 days.
    """
    text = text.strip()
    match = _ISO_DURATION.fullmatch(text) or _SHORT_DURATION.fullmatch(text)
    parts = {k: Decimal(v.replace(",", ".")) for k, v in (match.groupdict() if match else {}).items() if v}
    if not parts:
        raise ValueError(
            f"'{text}' is not a duration: expected ISO 8601 like 'PT15M', 'P1D', 'PT1H30M' "
            "or a shorthand like '90s', '15m', '2h', '1d', '1h30m', '1w'"
        )
    if parts.get("years") or parts.get("months"):
        raise ValueError(
            "months and years are not supported in an interval (their length varies): use a cron "
            "like '0 9 1 * *' or an rrule like 'FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9'"
        )
    days = int(parts.get("weeks", 0) * 7 + parts.get("days", 0))
    seconds = parts.get("hours", 0) * 3600 + parts.get("minutes", 0) * 60 + parts.get("seconds", 0)
    if seconds != int(seconds):
        raise ValueError(f"'{text}' is not a whole number of seconds")
    if days == 0 and seconds < 1:
        raise ValueError("an interval must be at least 1 second")
    if days + seconds / 86400 > MAX_INTERVAL_DAYS:
        raise ValueError(f"an interval must be at most {MAX_INTERVAL_DAYS} days")
    return Duration(days=days, seconds=int(seconds))


_CRON_FIELD = (
    re.compile(r"[\d*,/-]+"),
    re.compile(r"[\d*,/-]+"),
    re.compile(r"[\d*,/?-]+|L"),
    re.compile(r"[\dA-Za-z*,/-]+"),
    re.compile(r"[\dA-Za-z*,/?#-]+"),
)


def normalise_cron(expr: str) -> str:
    """The five plain crontab fields of `expr`, macros (`@daily`, ...) expanded.

    Raises:
        ValueError: not 5 fields, a field croniter rejects, or hashed (`H`) / random (`R`) values.
    """
    text = _MACROS.get(expr.strip().lower(), expr.strip())
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"'{expr}' has {len(fields)} fields: {CRON_HINT}")
    for field, pattern in zip(fields, _CRON_FIELD, strict=True):
        if not pattern.fullmatch(field) or re.search(r"(?<![A-Za-z])[HhRr](?![A-Za-z])", field):
            raise ValueError(f"'{field}' in '{expr}' is not a crontab field: {CRON_HINT}")
    text = " ".join(fields)
    try:
        croniter(text, datetime(2000, 1, 1))
    except CroniterError as exc:
        raise ValueError(f"'{expr}' is not valid ({exc}): {CRON_HINT}") from None
    return text


@dataclass(frozen=True, slots=True)
class RuleText:
    """One RRULE with its optional DTSTART, UNTIL set apart (it is read in the schedule's zone)."""

    params: tuple[tuple[str, str], ...]  # RRULE parts but UNTIL, names upper-case
    dtstart: datetime | None  # naive = floating wall time, aware = an instant
    until: datetime | None


_ICAL_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?", re.IGNORECASE)


def _ical_time(prop: str, value: str, *, end_of_day: bool = False) -> datetime:
    match = _ICAL_TIME.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{prop} '{value}' is not an RFC 5545 date-time like 20260105T083000 or 20260105")
    year, month, day, hour, minute, second, utc = match.groups()
    clock = (int(hour), int(minute), int(second)) if hour else ((23, 59, 59) if end_of_day else (0, 0, 0))
    stamp = datetime(int(year), int(month), int(day), *clock)
    tzid = re.search(r";TZID=([^;:]+)", prop, re.IGNORECASE)
    if utc:
        return stamp.replace(tzinfo=UTC)
    if tzid:
        zone = zone_named(tzid.group(1))
        if zone is None:
            raise ValueError(f"unknown TZID '{tzid.group(1)}'")
        return stamp.replace(tzinfo=zone)
    return stamp


@functools.lru_cache(maxsize=1024)
def parse_rule_text(text: str) -> RuleText:
    """Split an RRULE (optionally `RRULE:`-prefixed, optionally after a DTSTART line) into its parts.

    Checks what dateutil would loop on or warn about; dateutil checks the rest when the rule is built.

    Raises:
        ValueError: other lines, no FREQ, a bad INTERVAL/COUNT, COUNT with UNTIL, an impossible month day.
    """
    dtstart: datetime | None = None
    rule: str | None = None
    for line in filter(None, (raw.strip() for raw in text.strip().splitlines())):
        prop, colon, value = line.partition(":")
        name = prop.split(";")[0].strip().upper() if colon else "RRULE"
        if name == "DTSTART" and dtstart is None:
            dtstart = _ical_time(prop, value)
        elif name == "RRULE" and rule is None:
            rule = value if colon else line
        else:
            raise ValueError(f"unexpected line '{line}': only one DTSTART line and one RRULE are supported")
    if rule is None:
        raise ValueError(f"no RRULE found: {RULE_HINT}")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rule.split(";"))):
        key, equals, value = part.partition("=")
        if not equals or not value or key.strip().upper() in params:
            raise ValueError(f"'{part}' is not a NAME=VALUE part (once each): {RULE_HINT}")
        params[key.strip().upper()] = value.strip().upper()
    if "FREQ" not in params:
        raise ValueError(f"FREQ is missing: {RULE_HINT}")
    for key in ("INTERVAL", "COUNT"):
        if key in params and not (params[key].isdigit() and 1 <= int(params[key]) <= 100_000):
            raise ValueError(f"{key} must be a whole number from 1 to 100000")
    if "COUNT" in params and "UNTIL" in params:
        raise ValueError("use COUNT or UNTIL, not both (RFC 5545)")
    until = _ical_time("UNTIL", params.pop("UNTIL"), end_of_day=True) if "UNTIL" in params else None
    _check_month_days(params)
    return RuleText(tuple(params.items()), dtstart, until)


def _check_month_days(params: dict[str, str]) -> None:
    """Reject BYMONTH/BYMONTHDAY pairs no date has: dateutil would search up to year 9999 first."""
    try:
        months = [int(m) for m in params.get("BYMONTH", "1,3").split(",")]
        days = [int(d) for d in params["BYMONTHDAY"].split(",")] if "BYMONTHDAY" in params else []
    except ValueError:
        return  # malformed numbers: dateutil says what is wrong
    lengths = [(31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1] for m in months if 1 <= m <= 12]
    if days and lengths and not any(0 < abs(d) <= n for d in days for n in lengths):
        raise ValueError("no month has the days in BYMONTHDAY: the rule can never fire")


# --- describing ---------------------------------------------------------------------------

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last", -2: "second-to-last"}
_RULE_DAYS = {"MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6, "SU": 0}
_RULE_UNITS = {
    "YEARLY": "year",
    "MONTHLY": "month",
    "WEEKLY": "week",
    "DAILY": "day",
    "HOURLY": "hour",
    "MINUTELY": "minute",
    "SECONDLY": "second",
}


def wall_text(wall: datetime) -> str:
    """`2026-12-01 09:00`, with seconds only when there are some."""
    return wall.strftime("%Y-%m-%d %H:%M:%S" if wall.second else "%Y-%m-%d %H:%M")


def _and(items: Iterable[str]) -> str:
    words = list(items)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _ordinal(n: int) -> str:
    if n in _ORDINALS:
        return _ORDINALS[n]
    suffix = "th" if 10 <= abs(n) % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(abs(n) % 10, "th")
    return f"{abs(n)}{suffix}" + (" from last" if n < 0 else "")


def _runs(values: Sequence[int], name: Sequence[str] | None = None) -> str:
    """`1 through 5 and 7`: runs of three or more consecutive values are collapsed."""
    ordered = sorted(set(values))
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    words: list[str] = []
    for run in runs:
        text = [name[v] if name else str(v) for v in run]
        words.extend([f"{text[0]} through {text[-1]}"] if len(run) >= 3 else text)
    return _and(words)


def describe_interval(days: int, seconds: int) -> str:
    """`Every 15 minutes`, `Every day`, `Every 2 weeks`, `Every 1 hour and 30 minutes`, `Every 90 seconds`."""
    parts: list[tuple[int, str]] = []
    if days:
        parts.append((days // 7, "week") if days % 7 == 0 else (days, "day"))
    if seconds and not days and seconds < 120:
        parts.append((seconds, "second"))
    elif seconds:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        parts.extend((n, unit) for n, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second")) if n)
    if len(parts) == 1 and parts[0][0] == 1:
        return f"Every {parts[0][1]}"
    return "Every " + _and(_plural(n, unit) for n, unit in parts)


def _cron_time(minute: str, hour: str, minutes: list[int | str], hours: list[int | str]) -> str:
    minute_step = re.fullmatch(r"\*/(\d+)", minute)
    hour_step = re.fullmatch(r"\*/(\d+)", hour)
    exact = [m for m in minutes if isinstance(m, int)]
    if minutes != ["*"] and hours != ["*"] and len(minutes) * len(hours) <= 6:
        return "At " + _and(f"{h:02d}:{m:02d}" for h in hours for m in minutes)
    if hours == ["*"] or hour_step:
        period = "every hour" if hours == ["*"] else f"every {hour_step.group(1) if hour_step else ''} hours"
        if minutes == ["*"]:
            return "Every minute" + ("" if hours == ["*"] else f" of {period}")
        if minute_step and hours == ["*"]:
            return f"Every {minute_step.group(1)} minutes"
        if exact == [0]:
            return period.capitalize()
        return f"{period.capitalize()} at minute{'s' if len(exact) > 1 else ''} {_and(map(str, exact))}"
    if minutes == ["*"]:
        head = "Every minute"
    elif minute_step:
        head = f"Every {minute_step.group(1)} minutes"
    else:
        head = f"At minute{'s' if len(exact) > 1 else ''} {_and(map(str, exact))}"
    numbers = [h for h in hours if isinstance(h, int)]
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        if len(exact) == 1:
            return f"Every hour from {numbers[0]:02d}:{exact[0]:02d} to {numbers[-1]:02d}:{exact[0]:02d}"
        return f"{head}, between {numbers[0]:02d}:00 and {numbers[-1]:02d}:59"
    return f"{head}, past hours {_runs(numbers)}"


def _cron_weekdays(weekdays: list[int | str], nth: Mapping[int, set[int | str]]) -> str:
    plain = [d for d in weekdays if isinstance(d, int) and d not in nth]
    words = [
        f"the {'last' if n == 'l' else _ordinal(int(n))} {_DAYS[day]} of the month"
        for day, ns in sorted(nth.items())
        for n in sorted(ns, key=str)
    ]
    if len(plain) >= 3 and sorted(plain) == list(range(min(plain), max(plain) + 1)) and not words:
        return _runs(plain, _DAYS)  # "Monday through Friday"
    return "on " + _and([_DAYS[d] for d in sorted(plain)] + words)


def describe_cron(expr: str) -> str:
    """`At 09:00, Monday through Friday`, `Every 15 minutes`, `At 00:00, on day 1 of the month`."""
    minute, hour, *_ = expr.split()
    (minutes, hours, monthdays, months, weekdays), nth = croniter.expand(expr)
    text = _cron_time(minute, hour, minutes, hours)
    days: list[str] = []
    if monthdays != ["*"]:
        numbers = [d for d in monthdays if isinstance(d, int)]
        words = ([f"day{'s' if len(numbers) > 1 else ''} {_runs(numbers)}"] if numbers else []) + (
            ["the last day"] if "l" in monthdays else []
        )
        days.append(f"on {_and(words)} of the month")
    if weekdays != ["*"]:
        days.append(_cron_weekdays(weekdays, nth))
    if days:
        text += ", " + " or ".join(days)
    if months != ["*"]:
        listed = [m for m in months if isinstance(m, int)]
        text += ", " + ("" if len(listed) >= 3 and "through" in _runs(listed, _MONTHS) else "in ")
        text += _runs(listed, _MONTHS)
    if not days and months == ["*"] and re.match(r"(At|Every hour from) \d\d:\d\d", text):
        text += ", every day"
    return text


def _rule_ints(value: str | None) -> list[int]:
    return [int(v) for v in value.split(",")] if value else []


def describe_rrule(params: Mapping[str, str], dtstart: datetime | None, until: datetime | None) -> str:
    """`Every week on Monday and Wednesday at 08:30`, `Every month on the first Monday at 09:00, 10 times`."""
    unit, count = _RULE_UNITS[params["FREQ"]], int(params.get("INTERVAL", "1"))
    text = f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    if "BYDAY" in params:
        words = []
        for item in params["BYDAY"].split(","):
            match = re.fullmatch(r"([+-]?\d+)?([A-Z]{2})", item)
            if match is None:
                raise ValueError(f"invalid BYDAY {item}")
            n, name = match.groups()
            day = _DAYS[_RULE_DAYS[name]]
            words.append(f"the {_ordinal(int(n))} {day}" if n else day)
        text += " on " + _and(words)
    if "BYMONTHDAY" in params:
        numbers = _rule_ints(params["BYMONTHDAY"])
        positive = [n for n in numbers if n > 0]
        words = [f"day{'s' if len(positive) > 1 else ''} {_runs(positive)}"] if positive else []
        words += [f"the {_ordinal(n)} day" for n in numbers if n < 0]
        text += " on " + _and(words) + (" of the month" if params["FREQ"] in ("MONTHLY", "YEARLY") else "")
    if dtstart and not {"BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYEASTER"} & params.keys():
        if params["FREQ"] == "WEEKLY":  # the days DTSTART stands for
            text += f" on {_DAYS[dtstart.isoweekday() % 7]}"
        elif params["FREQ"] in ("MONTHLY", "YEARLY"):
            yearly = params["FREQ"] == "YEARLY" and "BYMONTH" not in params
            text += f" on day {dtstart.day}" + (f" of {_MONTHS[dtstart.month]}" if yearly else "")
    if "BYMONTH" in params:
        text += " in " + _runs(_rule_ints(params["BYMONTH"]), _MONTHS)
    frequent = params["FREQ"] in ("HOURLY", "MINUTELY", "SECONDLY")
    hours = _rule_ints(params.get("BYHOUR")) or ([dtstart.hour] if dtstart and not frequent else [])
    minutes = _rule_ints(params.get("BYMINUTE")) or ([dtstart.minute] if dtstart and unit != "minute" else [])
    if hours and minutes and len(hours) * len(minutes) <= 6:
        text += " at " + _and(f"{h:02d}:{m:02d}" for h in sorted(hours) for m in sorted(minutes))
    elif hours:
        text += f" at hour{'s' if len(hours) > 1 else ''} {_runs(hours)}"
    elif minutes and frequent:
        text += f" at minute{'s' if len(minutes) > 1 else ''} {_runs(minutes)}"
    extra = ("BYSETPOS", "BYWEEKNO", "BYYEARDAY", "BYEASTER", "BYSECOND")
    text += "".join(f" ({key}={params[key]})" for key in extra if key in params)
    if dtstart:
        text += f", starting {wall_text(dtstart)}"
    if "COUNT" in params:
        text += f", {_plural(int(params['COUNT']), 'time')}"
    if until:
        text += f", until {wall_text(until)}"
    return text

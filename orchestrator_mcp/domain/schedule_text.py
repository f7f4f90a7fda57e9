"""Schedule expressions as text: reading what people write.

Parsing here is syntax only (durations, crontab fields, RRULE lines, ISO date-times); what the parsed
pieces mean in time is `schedule.py`'s business, and describing schedules back in words is
`schedule_words.py`'s.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

MAX_INTERVAL_DAYS = 3660
MAX_COUNT = 10_000
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
    # A counted rule is walked from its start at each computation (see recurrence.compile_rule):
    # 10,000 occurrences keep that well within the fire-time budget.
    for key, most in (("INTERVAL", 100_000), ("COUNT", MAX_COUNT)):
        if key in params and not (params[key].isdigit() and 1 <= int(params[key]) <= most):
            raise ValueError(f"{key} must be a whole number from 1 to {most}")
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

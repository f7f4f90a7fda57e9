"""Schedules in words, for people: "At 09:00, Monday through Friday (Europe/Paris)", "Every week on
Monday and Wednesday at 08:30". Pure; `describe_schedule` never raises."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from orchestrator_mcp.domain.recurrence import compile_cron, compile_rule, once_instant, wall_time
from orchestrator_mcp.domain.schedule import Schedule, ScheduleKind
from orchestrator_mcp.domain.schedule_text import parse_duration, parse_rule_text, zone_named

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


def _describe_expr(schedule: Schedule, zone: ZoneInfo) -> str:
    if schedule.kind == ScheduleKind.ONCE:
        return f"Once at {wall_text(wall_time(once_instant(schedule.expr, zone), zone))}"
    if schedule.kind == ScheduleKind.INTERVAL:
        step = parse_duration(schedule.expr)
        return describe_interval(step.days, step.seconds)
    if schedule.kind == ScheduleKind.CRON:
        return describe_cron(compile_cron(schedule.expr).expr)
    compile_rule(schedule.expr, zone.key, datetime(2000, 1, 1))  # validates what the words leave out
    spec = parse_rule_text(schedule.expr)
    until = wall_time(spec.until, zone) if spec.until else None
    return describe_rrule(dict(spec.params), wall_time(spec.dtstart, zone) if spec.dtstart else None, until)


def describe_schedule(schedule: Schedule) -> str:
    """A sentence for people: "At 09:00, Monday through Friday (Europe/Paris)", "Every 15 minutes".

    Bounds are appended as "from ... until ..." on the schedule's wall clock, followed by the zone
    (left out for an hours/minutes/seconds interval without bounds). Never raises: an invalid schedule
    is described by its kind and expression.
    """
    if schedule.kind == ScheduleKind.MANUAL:
        return "Manually (run_now only)"
    zone = zone_named(schedule.timezone)
    try:
        if zone is None:
            raise ValueError(schedule.timezone)
        words = _describe_expr(schedule, zone)
    except (ValueError, KeyError, IndexError):
        return f"Invalid {schedule.kind.value} schedule '{schedule.expr}' ({schedule.timezone})"
    bounds = [
        f"{word} {wall_text(wall_time(bound, zone))}"
        for word, bound in (("from", schedule.start_at), ("until", schedule.end_at))
        if bound is not None
    ]
    if bounds:
        words += ", " + " ".join(bounds)
    if bounds or schedule.kind != ScheduleKind.INTERVAL or parse_duration(schedule.expr).days:
        words += f" ({schedule.timezone})"
    return words

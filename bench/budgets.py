"""`python -m bench.budgets [--seconds 1]`: what the budgets on expressions and fire times cost.

Prints, for typical `if`, `output` and template expressions, evaluations per second with plain
jmespath (`ParsedResult.search`, no budget: the "before") and with `evaluate` (budgeted: the
"after"), and for typical schedules the milliseconds that `check_schedule` + `upcoming_fire_times(5)`
take with the deadline's profile hook (as served) and without it (the computation alone). Numbers
only: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import jmespath
from jmespath.parser import ParsedResult

from orchestrator_mcp.domain.expressions import compile_expression, evaluate, sharing_budget
from orchestrator_mcp.domain.schedule import Schedule, check_schedule, upcoming_fire_times
from orchestrator_mcp.domain.templating import render

CONTEXT: dict[str, Any] = {
    "params": {"city": "Lyon", "threshold": 50, "tags": ["a", "b", "c"]},
    "vars": {
        "fc": {"rain_probability": 70, "hours": [{"h": h, "rain": h * 3 % 100} for h in range(24)]},
        "items": [{"id": n, "status": "ok" if n % 3 else "failed", "name": f"item {n}"} for n in range(50)],
    },
    "steps": {"forecast": {"status": "succeeded", "result": None, "error": None}},
    "run": {"id": "run_1", "task_id": "task_1", "trigger": "schedule", "attempt": 1},
    "task": {"id": "task_1", "title": "Weather"},
    "now": "2026-11-20T10:00:00Z",
}

EXPRESSIONS = {
    "if: comparison": "vars.fc.rain_probability > `50`",
    "if: status": "steps.forecast.status == 'succeeded'",
    "template: path": "params.city",
    "output: multiselect": "{city: params.city, rain: vars.fc.rain_probability, tags: params.tags}",
    "output: filter + projection": "vars.items[?status == 'failed'].name",
    "function: max_by": "max_by(vars.fc.hours, &rain).h",
    "function: join + map": "join(', ', map(&name, vars.items[:5]))",
}

WITH = {
    "text": "Rain likely in ${{ params.city }}: ${{ vars.fc.rain_probability }}%",
    "city": "${{ params.city }}",
    "hours": "${{ vars.fc.hours[?rain > `50`].h }}",
    "n": 3,
}

SCHEDULES = [
    ("cron", "0 9 * * 1-5"),
    ("cron", "*/15 * * * *"),
    ("cron", "0 0 * * 5#5"),
    ("rrule", "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=30"),
    ("rrule", "FREQ=MONTHLY;BYDAY=2TU"),
    ("interval", "15m"),
    ("once", "2027-01-01T09:00"),
]
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def per_second(action: Callable[[], object], seconds: float) -> float:
    """How many times `action` runs in a second (measured over about `seconds`)."""
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            action()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def best_rate(
    action: Callable[[], object], other: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """The best of five alternated measures of each (the machine drifts; alternating keeps it fair)."""
    mine, theirs = 0.0, 0.0
    for _ in range(5):
        mine = max(mine, per_second(action, seconds / 5))
        theirs = max(theirs, per_second(other, seconds / 5))
    return mine, theirs


def expressions(seconds: float) -> None:
    print(f"{'expression':30} {'plain/s':>10} {'budgeted/s':>11} {'overhead':>9}")
    plain_options = jmespath.Options()
    for name, text in EXPRESSIONS.items():
        parsed = compile_expression(text)

        def plain(parsed: ParsedResult = parsed) -> object:
            return parsed.search(CONTEXT, options=plain_options)

        def budgeted(text: str = text) -> object:
            return evaluate(text, CONTEXT)

        before, after = best_rate(plain, budgeted, seconds)
        print(f"{name:30} {before:10,.0f} {after:11,.0f} {before / after - 1:8.0%}")
    rendered = per_second(lambda: sharing_budget(render, WITH, CONTEXT, "with"), seconds)
    print(f"{'render of a 4-argument with':30} {'':10} {rendered:11,.0f}")


def schedules(rounds: int) -> None:
    print(f"\n{'schedule':55} {'no hook ms':>10} {'hooked ms':>10}")
    for kind, expr in SCHEDULES:
        parsed = Schedule.model_validate({"kind": kind, "expr": expr})

        def compute(s: Schedule = parsed) -> None:
            assert not check_schedule(s, NOW)
            upcoming_fire_times(s, NOW, 5)

        compute()
        hooked = min(timed(compute) for _ in range(rounds))
        unhooked = min(timed(lambda: without_hook(compute)) for _ in range(rounds))
        print(f"{kind + ' ' + expr:55} {unhooked * 1000:10.3f} {hooked * 1000:10.3f}")


def without_hook(compute: Callable[[], None]) -> None:
    """`compute` with `sys.setprofile` made a no-op, so the deadline's hook is never installed."""
    with mock.patch.object(sys, "setprofile", lambda hook: None):
        compute()


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per expression measure")
    parser.add_argument("--rounds", type=int, default=50, help="rounds per schedule (best kept)")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}")
    expressions(args.seconds)
    schedules(args.rounds)


if __name__ == "__main__":
    main()

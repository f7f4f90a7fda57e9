"""The budget of computing fire times (SPEC §11): 0.5 s of work, then "schedule is too costly".

Every public function of `schedule` computes within a `fire_time_budget`: its own, or the one a
caller opened around several calls (the scheduler opens one per fire). The deadline is enforced two
ways, each where it is needed:

* between fire times: every fire time a stream yields checks the deadline (`check`). croniter finds
  one fire time in milliseconds whatever the expression (it gives up on dates it cannot find within
  its own window of years), and interval and once are arithmetic, so this bounds them all;
* inside dateutil: an rrule searches for its next date in a loop inside one `next()` that can run
  for years of dates (`FREQ=DAILY;BYMONTH=2;BYYEARDAY=366` never matches), so while an rrule is
  computed a profile hook in the computing thread raises past the deadline
  (`domain.budget.interrupted_at`). It costs about a microsecond per Python call, so it is
  installed only around rrule computations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from orchestrator_mcp.domain.budget import Deadline, OverBudget, interrupted_at

FIRE_TIME_SECONDS = 0.5
"""How long computing a schedule's fire times may take before it gives up."""


class ScheduleTooCostly(ValueError):
    """Computing a schedule's fire times took longer than its budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"schedule is too costly to compute: finding its fire times took over {seconds:g} s "
            "(a rule that matches rarely or never, like BYMONTH=2 with BYYEARDAY=366, searches for "
            "years): simplify it"
        )


@dataclass(slots=True)
class _Budget:
    deadline: Deadline
    hooked: bool = False


_current: ContextVar[_Budget | None] = ContextVar("fire_time_budget", default=None)


@contextmanager
def fire_time_budget(seconds: float = FIRE_TIME_SECONDS) -> Iterator[None]:
    """Fire times computed in the block share one budget of `seconds` of work (a block nested in
    another shares the outer one).

    Raises:
        ScheduleTooCostly: the block ran past the budget.
    """
    if _current.get() is not None:
        yield
        return
    token = _current.set(_Budget(Deadline(seconds)))
    try:
        yield
    except OverBudget:
        raise ScheduleTooCostly(seconds) from None
    finally:
        _current.reset(token)


@contextmanager
def computing(interrupted: bool) -> Iterator[None]:
    """Compute within the open budget (or a new one); `interrupted`: with the profile hook, for
    computations that may loop inside a library (rrule)."""
    with fire_time_budget():
        budget = _current.get()
        if not interrupted or budget is None or budget.hooked:
            yield
            return
        budget.hooked = True
        try:
            with interrupted_at(budget.deadline):
                yield
        finally:
            budget.hooked = False


def check() -> None:
    """Between two fire times: raise if the open budget ran out (see `Deadline.check`)."""
    budget = _current.get()
    if budget is not None:
        budget.deadline.check()

"""Work budgets: how long a pure computation whose cost depends on user input may run.

Expression evaluation and fire-time computation are pure functions, but what they cost is up to
whoever wrote the expression or the schedule. Each runs against a `Deadline` on the monotonic clock:
it measures work, not schedule time, so it never reads the injected `Clock` (a `ManualClock` test
never moves it) and a busy machine only makes it expire sooner for work that is slow anyway.

Two ways to expire:

* the deadline itself: the computation gives up with its own "too costly" error (`OverBudget`
  here, translated by the caller into an `ExpressionError` or a schedule problem);
* an inline slice (`inline_slice`), shorter, set by `orchestrator_mcp.offload` while it tries work on
  the event loop: past it the work stops with `SliceSpent` and is run again in a worker thread, where
  only its own deadline applies.

Both are `BaseException`s on purpose: third-party code on the way up (dateutil, croniter, jmespath)
catches `Exception` here and there, and must not swallow them.

Code that checks a deadline between steps calls `Deadline.check`; code that cannot be interrupted from
outside (dateutil's rrule iteration loops inside one `next()`) runs under `interrupted_at`, a profile
hook that raises once past the deadline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import FrameType
from typing import Any

_slice_end: ContextVar[float | None] = ContextVar("inline_slice_end", default=None)


class OverBudget(BaseException):
    """The computation ran past its deadline (the caller says what that means for the user)."""


class SliceSpent(BaseException):
    """The computation ran past the inline slice: it is to be run again off the event loop."""


@contextmanager
def inline_slice(seconds: float) -> Iterator[None]:
    """Deadlines created inside the block also expire `seconds` from now, with `SliceSpent`."""
    token = _slice_end.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _slice_end.reset(token)


class Deadline:
    """A point on the monotonic clock after which a computation gives up.

    `at` is `seconds` from when it is made; inside an `inline_slice` the deadline checked is the
    earlier of the two, and `expire` says which one passed.
    """

    __slots__ = ("at", "limit", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        end = _slice_end.get()
        self.limit = self.at if end is None else min(self.at, end)

    def check(self) -> None:
        """Raises:
        OverBudget: past the deadline.
        SliceSpent: past the inline slice, before the deadline.
        """
        if time.monotonic() > self.limit:
            self.expire()

    def expire(self) -> None:
        """Raise what a check past the limit raises."""
        if self.limit < self.at:
            raise SliceSpent()
        raise OverBudget()


@contextmanager
def interrupted_at(deadline: Deadline) -> Iterator[None]:
    """Run the block with a profile hook in this thread that raises (see `Deadline.check`) at the
    first function call or return past the deadline, so loops inside a library give up too.

    The hook costs about a microsecond per call, so it is only installed around the computations
    that need it. A profiler already installed in this thread is set aside for the block.
    """
    previous = sys.getprofile()
    limit, monotonic = deadline.limit, time.monotonic

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if monotonic() > limit:
            # CPython unsets a profile hook that raises, so this fires once.
            deadline.expire()

    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(previous)

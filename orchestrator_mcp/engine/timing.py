"""Waiting on the injected clock: every wait and deadline of the engine goes through these, so a
`ManualClock` test moves the engine's time (heartbeats, polls, grace periods, run time limits)
without waiting for it.

The store's outage back-off is the exception (store/outage.py): a database restart takes real time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel

from orchestrator_mcp.clock import Clock

logger = logging.getLogger(__name__)


async def wait_for(clock: Clock, event: anyio.Event, deadline: datetime) -> bool:
    """Wait until `event` is set or the clock reaches `deadline`; True if the event was set."""
    if event.is_set() or deadline <= clock.now():
        await anyio.lowlevel.checkpoint()
        return event.is_set()
    async with anyio.create_task_group() as group:

        async def sleeper() -> None:
            await clock.sleep_until(deadline)
            group.cancel_scope.cancel()

        async def waker() -> None:
            await event.wait()
            group.cancel_scope.cancel()

        group.start_soon(sleeper)
        group.start_soon(waker)
    return event.is_set()


async def wait_seconds(clock: Clock, event: anyio.Event, seconds: float) -> bool:
    """`wait_for` at most `seconds` of the clock's time from now."""
    return await wait_for(clock, event, clock.now() + timedelta(seconds=seconds))


async def every(clock: Clock, seconds: float, action: Callable[[], Awaitable[Any]]) -> None:
    """Call `action` every `seconds` of the clock's time (first after one period), until cancelled;
    a failure is logged (in full once, then one line each time while it keeps failing) and retried."""
    failures = 0
    name = getattr(action, "__name__", action)
    while True:
        await clock.sleep(seconds)
        try:
            await action()
        except Exception as error:
            failures += 1
            if failures == 1:
                logger.exception("engine housekeeping (%s) failed; retrying", name)
            else:
                logger.warning("engine housekeeping (%s) failed again (%s); retrying", name, error)
        else:
            failures = 0


class TimeLimit:
    """A cancel scope that the clock cancels at a deadline (see `time_limit`)."""

    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()

    @property
    def reached(self) -> bool:
        """True if the deadline cut the block (not if the block ended first)."""
        return self.scope.cancelled_caught


@asynccontextmanager
async def time_limit(clock: Clock, deadline: datetime) -> AsyncIterator[TimeLimit]:
    """Run the block until the clock reaches `deadline`, then cancel it (`reached` says so).

    One task sleeps on the clock for the block's whole length: the cost of a limit is one task,
    whatever the block does inside it."""
    limit = TimeLimit()

    async def expire() -> None:
        await clock.sleep_until(deadline)
        limit.scope.cancel()

    failure: Exception | None = None
    async with anyio.create_task_group() as timer:
        timer.start_soon(expire)
        try:
            with limit.scope:
                yield limit
        except Exception as error:  # raised as it is, not in the group's ExceptionGroup
            failure = error
        finally:
            timer.cancel_scope.cancel()
    if failure is not None:
        raise failure

"""Waiting on the injected clock: every wait of the engine goes through these (and a run's time
limit through `Clock.cancel_at`), so a `ManualClock` test moves the engine's time (heartbeats,
polls, grace periods, run time limits) without waiting for it.

The store's outage back-off is the exception (store/outage.py): a database restart takes real time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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

"""The clock every piece of scheduling code reads, and a manual one for tests.

Nothing in the engine reads `datetime.now()` directly: it asks a `Clock`, so tests can move
time forward by days in microseconds and see exactly what the scheduler would have done.
"""

from __future__ import annotations

import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    """Wall-clock time in UTC and a way to wait for it."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds that only ever grow, from an arbitrary start: for measuring spans (rate limits)."""
        ...

    async def sleep_until(self, deadline: datetime) -> None:
        """Return once `now() >= deadline` (immediately if it already is). Cancellable."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time. Cancellable."""
        ...

    def cancel_at(self, deadline: datetime) -> anyio.CancelScope:
        """A cancel scope that this clock cancels once `now() >= deadline` (a time limit on a block
        that costs no task: `with clock.cancel_at(deadline) as scope:`, then `scope.cancelled_caught`)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: datetime) -> None:
        delay = (deadline - self.now()).total_seconds()
        if delay > 0:
            await anyio.sleep(delay)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))

    def cancel_at(self, deadline: datetime) -> anyio.CancelScope:
        # The event loop's own deadline: the same moment, on its monotonic time.
        return anyio.CancelScope(deadline=anyio.current_time() + (deadline - self.now()).total_seconds())


class ManualClock:
    """A clock that moves only when told to; `advance()` wakes every sleeper whose time has come."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = self._start = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, anyio.Event]] = []
        self._limits: list[tuple[datetime, int, anyio.CancelScope]] = []
        self._counter = itertools.count()
        self._slept: anyio.Event | None = None  # set when a sleeper arrives, for `sleeper_at`

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._start).total_seconds()

    async def sleep_until(self, deadline: datetime) -> None:
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (deadline, next(self._counter), event))
        if self._slept is not None:
            self._slept.set()
            self._slept = None
        await event.wait()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=seconds))

    def cancel_at(self, deadline: datetime) -> anyio.CancelScope:
        scope = anyio.CancelScope()
        if deadline <= self._now:
            scope.cancel()
        else:
            heapq.heappush(self._limits, (deadline, next(self._counter), scope))
        return scope

    async def sleeper_at(self, deadline: datetime) -> None:
        """Return once something sleeps until exactly `deadline`: a test knows a nap has begun (and
        will end when the clock reaches `deadline`) before it moves the clock past it."""
        deadline = deadline.astimezone(UTC)
        while not any(due == deadline and not event.is_set() for due, _, event in self._sleepers):
            if self._slept is None:
                self._slept = anyio.Event()
            await self._slept.wait()

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (never backwards), wake the sleepers and cancel the scopes that are due."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("a ManualClock never goes backwards")
        self._now = moment
        while self._sleepers and self._sleepers[0][0] <= moment:
            heapq.heappop(self._sleepers)[2].set()
        while self._limits and self._limits[0][0] <= moment:
            heapq.heappop(self._limits)[2].cancel()  # a no-op for a scope already left

    def advance(self, seconds: float) -> None:
        """Move forward by `seconds` (see `set`)."""
        self.set(self._now + timedelta(seconds=seconds))

"""The manual clock: sleepers wake when it is moved past their time, and a test can see them waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

from orchestrator_mcp.clock import ManualClock

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_sleeper_at_returns_once_something_sleeps_until_that_moment() -> None:
    clock = ManualClock(NOW)
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(seconds)

    async with anyio.create_task_group() as group:
        group.start_soon(nap, 30)
        group.start_soon(nap, 90)
        with anyio.fail_after(10):
            await clock.sleeper_at(NOW + timedelta(seconds=90))
            await clock.sleeper_at(NOW + timedelta(seconds=30))
        clock.advance(60)
        with anyio.fail_after(10):
            while woke != [30]:
                await anyio.lowlevel.checkpoint()
        clock.advance(30)
    assert woke == [30, 90]


async def test_sleeper_at_waits_for_a_sleeper_that_arrives_later() -> None:
    clock = ManualClock(NOW)
    seen = anyio.Event()

    async def watch() -> None:
        await clock.sleeper_at(NOW + timedelta(seconds=5))
        seen.set()

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert not seen.is_set()  # nothing sleeps yet
        group.start_soon(clock.sleep, 5)
        with anyio.fail_after(10):
            await seen.wait()
        clock.advance(5)


def test_a_manual_clock_never_goes_backwards() -> None:
    clock = ManualClock(NOW)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(NOW - timedelta(seconds=1))


def test_monotonic_seconds_follow_a_manual_clock_exactly() -> None:
    clock = ManualClock(NOW)
    assert clock.monotonic() == 0.0
    clock.advance(1)
    clock.advance(0.5)
    assert clock.monotonic() == 1.5

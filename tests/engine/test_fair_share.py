"""Run slots are shared across principals by the engine: a burst from one does not keep another's run
waiting past the next slot that frees. On a manual clock: naps end when the test moves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from orchestrator_mcp.catalog import Catalog, ServerConnection
from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.run_rows import new_run
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import RunRow, TaskRow
from tool_catalog import create_core_server

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAP = [{"id": "nap", "uses": "core.sleep", "with": {"seconds": "${{ params.nap }}"}}]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def napping_catalog(clock: ManualClock) -> AsyncIterator[Catalog]:
    """The core tools, whose `sleep` naps on the manual clock."""
    built = Catalog([ServerConnection("core", "builtin", create_core_server(clock))])
    async with anyio.create_task_group() as group:
        await built.start(group)
        yield built
        built.close()


async def task_of(store: SqlStore, owner: str, priority: int) -> TaskRow:
    task = TaskRow(
        id=f"task_{owner}",
        owner=owner,
        title=f"{owner} naps",
        status="active",
        schedule={"kind": "manual"},
        pipeline=NAP,
        params={"nap": 40},
        policy={"priority": priority, "overlap": "allow"},
        created_at=NOW,
        updated_at=NOW,
    )
    await store.insert_task(task)
    return task


async def queue(store: SqlStore, task: TaskRow, nap: int, at: datetime) -> RunRow:
    run = new_run(task, Trigger.MANUAL, at, at, Policy.model_validate(task.policy), {"nap": nap})
    await store.insert_run(run)
    return run


async def statuses(store: SqlStore, owner: str) -> list[str]:
    runs = await store.list_runs(owner, None, None, None, 100, None)
    return sorted(run.status for run in runs)


async def until(store: SqlStore, owner: str, expected: list[str]) -> None:
    while True:
        if await statuses(store, owner) == expected:
            return
        await anyio.sleep(0.01)


async def test_a_priority_5_burst_leaves_the_next_freed_slot_to_another_principals_run(
    store: SqlStore, napping_catalog: Catalog, clock: ManualClock
) -> None:
    runner = Runner(store, napping_catalog, clock, {}, RunEvents())
    engine = Engine(store, runner, clock, EngineSettings(max_concurrent_runs=2, shutdown_grace_seconds=0))
    alice = await task_of(store, "alice", priority=5)
    await queue(store, alice, 40, NOW)
    await queue(store, alice, 60, NOW)
    for _ in range(8):
        await queue(store, alice, 40, NOW)
    bob = await task_of(store, "bob", priority=1)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(engine.run)
            await until(store, "alice", ["queued"] * 8 + ["running"] * 2)  # alone: both slots
            await clock.sleeper_at(NOW + timedelta(seconds=60))
            clock.advance(1)
            waiting = await queue(store, bob, 5, clock.now())
            engine.wake(due_times=False)  # what run_now does after queueing
            await anyio.sleep(0.1)  # a negative check: every slot is busy, nothing may start
            assert await statuses(store, "bob") == ["queued"] and len(engine.running) == 2
            clock.advance(39)  # alice's 40 s nap ends: one slot frees, and bob has none running
            await until(store, "bob", ["running"])
            assert await statuses(store, "alice") == ["queued"] * 8 + ["running", "succeeded"]
            started = await store.get_run(waiting.id)
            assert started is not None and started.started_at == NOW + timedelta(seconds=40)
            clock.advance(5)  # bob's nap ends: with bob waiting no more, alice takes the slot back
            await until(store, "alice", ["queued"] * 7 + ["running"] * 2 + ["succeeded"])
            await engine.stop()
    assert await statuses(store, "bob") == ["succeeded"]

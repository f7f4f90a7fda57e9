"""The engine's waits and deadlines are on its clock: a manual clock moves them without real waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import ManualClock, SystemClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.engine.events import RunEvent, RunEvents
from orchestrator_mcp.engine.handle import RunHandle
from orchestrator_mcp.engine.run_rows import new_run
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import RunRow, TaskRow

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SLOW = [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 60}}]
"""A step that takes a minute of real time: a test that ends quickly did not wait for it."""


async def queued_run(
    store: SqlStore, pipeline: list[dict[str, Any]], **policy: Any
) -> tuple[TaskRow, RunRow]:
    task = TaskRow(
        id="task_1",
        owner="local",
        title="t",
        status="active",
        schedule={"kind": "manual"},
        pipeline=pipeline,
        params={},
        policy=policy,
        created_at=NOW,
        updated_at=NOW,
    )
    await store.insert_task(task)
    run = new_run(task, Trigger.MANUAL, NOW, NOW, Policy.model_validate(policy), {})
    await store.insert_run(run)
    return task, run


def started(events: RunEvents, run_id: str) -> anyio.Event:
    """Set once the run's first write is stored (its first step's "running" record with it)."""
    event = anyio.Event()

    def on_event(notice: RunEvent) -> None:
        if notice.message == "run started":
            event.set()

    events.listen(run_id, on_event)
    return event


async def status_of(store: SqlStore, run_id: str) -> str:
    run = await store.get_run(run_id)
    assert run is not None
    return run.status


async def test_a_runs_time_limit_fires_when_the_clock_passes_it(store: SqlStore, catalog: Catalog) -> None:
    clock = ManualClock(NOW)
    events = RunEvents()
    runner = Runner(store, catalog, clock, {}, events)
    task, queued = await queued_run(store, SLOW, timeout_seconds=30)
    [run] = (await store.claim(NOW, "inst_test", 1)).runs
    calling = started(events, run.id)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(runner.execute, run, task, RunHandle(run.id))
            await calling.wait()
            clock.advance(29.9)
            await anyio.sleep(0.1)
            assert await status_of(store, run.id) == "running"  # not yet
            clock.advance(0.1)  # the limit: no real time has to pass
    ended = await store.get_run(run.id)
    assert ended is not None and ended.status == "timed_out"
    assert ended.error == {
        "step_id": "slow",
        "type": "run_timeout",
        "message": "the run exceeded its time limit of 30s",
    }
    assert ended.finished_at == NOW + timedelta(seconds=30)
    [step] = await store.list_steps(run.id)
    assert step.status == "timed_out"


async def test_heartbeats_follow_the_clock(store: SqlStore) -> None:
    clock = ManualClock(NOW)
    runner = Runner(store, Catalog([]), clock, {}, RunEvents())
    engine = Engine(store, runner, clock, EngineSettings(heartbeat_seconds=5))

    async def last_seen() -> datetime:
        [instance] = await store.list_instances(NOW - timedelta(days=1))
        return instance.last_seen_at

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(engine.run)
            assert await last_seen() == NOW  # at start-up
            clock.advance(4.9)
            await anyio.sleep(0.1)
            assert await last_seen() == NOW
            for beat in (1, 2):
                clock.advance(5 if beat > 1 else 0.1)
                beaten = NOW + timedelta(seconds=5 * beat)
                while True:
                    if await last_seen() == beaten:
                        break
                    await anyio.sleep(0.01)
            await engine.stop()


async def test_the_shutdown_grace_is_on_the_clock(store: SqlStore, catalog: Catalog) -> None:
    clock = ManualClock(NOW)
    events = RunEvents()
    runner = Runner(store, catalog, clock, {}, events)
    engine = Engine(store, runner, clock, EngineSettings(shutdown_grace_seconds=20))
    _, run = await queued_run(store, SLOW)
    calling = started(events, run.id)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(engine.run)
            await calling.wait()
            group.start_soon(engine.stop)
            await anyio.sleep(0.1)
            assert list(engine.running) == [run.id]  # within the grace
            clock.advance(20)  # the grace ends: the run is told to stop and records it
    assert await status_of(store, run.id) == "interrupted"


async def test_clocks_cancel_a_scope_at_a_deadline() -> None:
    clock = ManualClock(NOW)
    scope = clock.cancel_at(NOW + timedelta(seconds=10))
    clock.advance(9)
    assert not scope.cancel_called
    clock.advance(1)
    assert scope.cancel_called
    assert clock.cancel_at(NOW).cancel_called  # already past
    with SystemClock().cancel_at(datetime.now(UTC) - timedelta(seconds=1)) as past:
        await anyio.sleep(1)
    assert past.cancelled_caught

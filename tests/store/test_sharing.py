"""Several stores on one database share the work: every fire time and every queued run goes to one."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import anyio.lowlevel
import pytest

from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.engine.scheduler import new_run
from orchestrator_mcp.store.sql import SqlStore
from tests.store.test_sql_store import NOW, plan_one, rows_for, task_row

RACERS = 4


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[list[SqlStore]]:
    opened = [await SqlStore.open(database_url) for _ in range(RACERS)]
    yield opened
    for store in opened:
        await store.close()


async def test_racing_stores_fire_each_due_task_once(stores: list[SqlStore]) -> None:
    for n in range(60):
        await stores[0].insert_task(task_row(f"task_{n:02}"))
    queued: list[int] = []

    async def fire(store: SqlStore) -> None:
        while True:  # small batches, so the racers interleave
            count = (await store.fire_due(NOW, plan_one, rows_for, 7)).queued
            if not count:
                return
            queued.append(count)

    async with anyio.create_task_group() as group:
        for store in stores:
            group.start_soon(fire, store)
    runs = await stores[0].list_runs(None, None, None, None, 200, None)
    assert sum(queued) == len(runs) == 60
    assert Counter(run.task_id for run in runs) == {f"task_{n:02}": 1 for n in range(60)}
    assert await stores[0].next_due_at() == NOW + timedelta(minutes=1)


async def test_racing_stores_claim_each_queued_run_once(stores: list[SqlStore]) -> None:
    await stores[0].insert_task(task_row("task_1", None))
    task = await stores[0].get_task("task_1")
    assert task is not None
    for _ in range(40):
        await stores[0].insert_run(new_run(task, Trigger.MANUAL, NOW, NOW, Policy(overlap="allow"), {}))
    claims: dict[str, list[str]] = {}

    async def claim(index: int, store: SqlStore) -> None:
        mine = claims.setdefault(f"inst_{index}", [])
        while batch := (await store.claim(NOW, f"inst_{index}", 3)).runs:
            mine += [run.id for run in batch]
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        for index, store in enumerate(stores):
            group.start_soon(claim, index, store)
    claimed = [run_id for ids in claims.values() for run_id in ids]
    assert len(claimed) == len(set(claimed)) == 40
    runs = await stores[0].list_runs(None, "task_1", "running", None, 100, None)
    assert {run.id: run.instance_id for run in runs} == {
        run_id: instance for instance, ids in claims.items() for run_id in ids
    }


async def test_racing_stores_start_one_run_at_a_time_of_an_exclusive_task(stores: list[SqlStore]) -> None:
    for n in range(10):
        await stores[0].insert_task(task_row(f"task_{n}", None))
        task = await stores[0].get_task(f"task_{n}")
        assert task is not None
        for _ in range(3):  # queued runs waiting their turn (overlap buffer_all)
            await stores[0].insert_run(new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {}))
    claimed: list[str] = []

    async def claim(index: int, store: SqlStore) -> None:
        for _ in range(5):
            claimed.extend(run.task_id for run in (await store.claim(NOW, f"inst_{index}", 2)).runs)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        for index, store in enumerate(stores):
            group.start_soon(claim, index, store)
    assert sorted(claimed) == [f"task_{n}" for n in range(10)]

"""The task quota is counted in the transaction that stores a task: racing inserts of one owner, from
several stores on one database, never go past it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from orchestrator_mcp.store.base import TaskQuotaFull
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import IdempotencyRow, TaskRow
from tests.conftest import echo_pipeline

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LIMIT = 3
RACERS = 20


def task_row(task_id: str, owner: str = "alice", status: str = "active") -> TaskRow:
    return TaskRow(
        id=task_id,
        owner=owner,
        title=task_id,
        status=status,
        schedule={"kind": "manual"},
        pipeline=echo_pipeline(n=1),
        params={},
        policy={},
        created_at=NOW,
        updated_at=NOW,
    )


async def test_active_and_paused_tasks_count_completed_and_cancelled_ones_do_not(database_url: str) -> None:
    store = await SqlStore.open(database_url)
    try:
        for n, status in enumerate(["completed", "cancelled", "active", "paused"]):
            await store.insert_task(task_row(f"task_{n}", status=status), LIMIT)
        await store.insert_task(task_row("task_bob", owner="bob"), LIMIT)  # another owner's
        await store.insert_task(task_row("task_4"), LIMIT)  # the third active or paused one
        with pytest.raises(TaskQuotaFull) as full:
            await store.insert_task(task_row("task_5"), LIMIT)
        assert (full.value.owner, full.value.limit) == ("alice", LIMIT)
        assert await store.get_task("task_5") is None
        await store.insert_task(task_row("task_5"))  # without a limit, as before
    finally:
        await store.close()


async def test_racing_inserts_of_one_owner_from_two_stores_stop_at_the_limit(database_url: str) -> None:
    stores = [await SqlStore.open(database_url), await SqlStore.open(database_url)]
    try:
        stored: list[str] = []
        refused: list[str] = []

        async def insert(n: int) -> None:
            task = task_row(f"task_{n}")
            try:
                await stores[n % 2].insert_task(task, LIMIT)
            except TaskQuotaFull:
                refused.append(task.id)
            else:
                stored.append(task.id)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for n in range(RACERS):
                    group.start_soon(insert, n)
        assert len(stored) == LIMIT and len(refused) == RACERS - LIMIT
        listed = await stores[0].list_tasks("alice", None, None, 100, None)
        assert sorted(task.id for task in listed) == sorted(stored)
    finally:
        for store in stores:
            await store.close()


async def test_an_insert_under_a_key_over_the_limit_takes_neither_the_key_nor_a_place(
    database_url: str,
) -> None:
    store = await SqlStore.open(database_url)
    try:
        fresh_after = NOW - timedelta(hours=24)
        for n in range(LIMIT):
            await store.insert_task(task_row(f"task_{n}"), LIMIT)

        def key(result_id: str) -> IdempotencyRow:
            return IdempotencyRow(
                owner="alice", tool="schedule_task", key="k", created_at=NOW, result_id=result_id
            )

        with pytest.raises(TaskQuotaFull):
            await store.insert_task_once(task_row("task_x"), key("task_x"), fresh_after, LIMIT)
        assert await store.find_idempotent("alice", "schedule_task", "k", fresh_after) is None
        await store.update_task("task_0", {"status": "cancelled"})
        assert await store.insert_task_once(task_row("task_y"), key("task_y"), fresh_after, LIMIT) == "task_y"
    finally:
        await store.close()


async def test_making_a_completed_task_active_again_needs_a_place(database_url: str) -> None:
    store = await SqlStore.open(database_url)
    try:
        await store.insert_task(task_row("task_done", status="completed"))
        for n in range(LIMIT):
            await store.insert_task(task_row(f"task_{n}"), LIMIT)
        with pytest.raises(TaskQuotaFull):
            await store.update_task("task_done", {"status": "active"}, LIMIT)
        assert (await store.get_task("task_done")).status == "completed"  # type: ignore[union-attr]
        # An active task changed in place is not counted twice.
        assert await store.update_task("task_0", {"status": "active", "title": "same"}, LIMIT) is not None
        await store.delete_task("task_1")
        revived = await store.update_task("task_done", {"status": "active"}, LIMIT)
        assert revived is not None and revived.status == "active"
    finally:
        await store.close()

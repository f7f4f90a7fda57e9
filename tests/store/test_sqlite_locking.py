"""A SQLite file locked by another process: the store waits for it without stalling the event loop."""

from __future__ import annotations

import sqlite3

import anyio
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from orchestrator_mcp.store.sql import SqlStore
from tests.store.test_sql_store import task_row


def hold_write_lock(sqlite_url: str) -> sqlite3.Connection:
    """Another process's writer, mid-transaction: it holds the file's write lock until it commits."""
    other = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_write_waits_for_another_writer_while_the_event_loop_keeps_serving(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    other = hold_write_lock(sqlite_url)
    stored = anyio.Event()
    ticks = 0

    async def insert() -> None:
        await store.insert_task(task_row("task_waited", None))
        stored.set()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(insert)
            for _ in range(10):  # the loop goes on while the write waits for the lock
                await anyio.sleep(0.01)
                ticks += 1
            assert not stored.is_set()
            assert await store.get_task("task_waited") is None  # reads are not held up either
            other.execute("COMMIT")
            with anyio.fail_after(10):
                await stored.wait()
    finally:
        other.close()
    assert ticks == 10
    task = await store.get_task("task_waited")
    await store.close()
    assert task is not None


async def test_a_write_that_fails_is_rolled_back_and_the_next_one_goes_through(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    await store.insert_task(task_row("task_1", None))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        await store.insert_task(task_row("task_1", None))
    await store.insert_task(task_row("task_2", None))
    assert [task.id for task in await store.list_tasks(None, None, None, 10, None)] == ["task_2", "task_1"]
    await store.close()


async def test_an_in_memory_database_is_one_database_for_every_call() -> None:
    store = await SqlStore.open("sqlite:///:memory:")
    await store.insert_task(task_row("task_1", None))
    await store.delete_task("task_1")  # a bulk delete, which a file would hand to the writer thread
    await store.insert_task(task_row("task_2", None))
    assert [task.id for task in await store.list_tasks(None, None, None, 10, None)] == ["task_2"]
    await store.close()

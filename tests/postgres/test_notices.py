"""Notices between instances: sent with the write, delivered once it commits, heard by every listener."""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy import Connection, text

from orchestrator_mcp.store.notices import CHANNEL, RECONNECTED
from orchestrator_mcp.store.sql import SqlStore
from tests.store.test_sql_store import task_row


class Heard:
    def __init__(self) -> None:
        self.topics: list[str] = []
        self.changed = anyio.Event()

    def __call__(self, topic: str) -> None:
        self.topics.append(topic)
        self.changed.set()

    async def next(self) -> str:
        with anyio.fail_after(5):
            while not self.topics:
                await self.changed.wait()
                self.changed = anyio.Event()
        return self.topics.pop(0)


async def test_writes_other_instances_must_act_on_are_announced(pg_url: str) -> None:
    writer, reader = await SqlStore.open(pg_url), await SqlStore.open(pg_url)
    heard = Heard()
    async with anyio.create_task_group() as group:
        group.start_soon(reader.listen, heard)
        assert await heard.next() == RECONNECTED
        await writer.insert_task(task_row("task_1", None))
        assert await heard.next() == "task"
        await writer.update_task("task_1", {"status": "paused"})
        assert await heard.next() == "task"
        await writer.update_run("run_x", {"cancel_requested": True})
        assert await heard.next() == "cancel"
        await writer.delete_task("task_1")
        assert await heard.next() == "task"
        group.cancel_scope.cancel()
    await writer.close()
    await reader.close()


def notify_then_fail(conn: Connection) -> None:
    conn.execute(text("SELECT pg_notify(:channel, 'task:never')"), {"channel": CHANNEL})
    raise RuntimeError("roll back")


async def test_a_write_that_rolls_back_announces_nothing(pg_url: str) -> None:
    store = await SqlStore.open(pg_url)
    heard = Heard()
    async with anyio.create_task_group() as group:
        group.start_soon(store.listen, heard)
        assert await heard.next() == RECONNECTED
        with pytest.raises(RuntimeError):
            await store.database.write(notify_then_fail)
        await store.insert_task(task_row("task_1", None))
        assert await heard.next() == "task"  # the first notice to arrive is the committed one
        assert heard.topics == []
        group.cancel_scope.cancel()
    await store.close()

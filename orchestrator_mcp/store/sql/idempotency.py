"""Idempotency: the result of a tool call made with a key, returned again on a retry; a task or run
inserted under a key in the same transaction that takes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Table, insert, or_, select

from orchestrator_mcp.store.base import Claim, Slots
from orchestrator_mcp.store.sql.runs import RunsMixin
from orchestrator_mcp.store.sql.statements import IDEMPOTENCY, RUNS, TASKS
from orchestrator_mcp.store.sql.tasks import check_room
from orchestrator_mcp.store.tables import IdempotencyRow, RunRow, TaskRow


class IdempotencyMixin(RunsMixin):
    """Remembered results by (owner, tool, key)."""

    async def find_idempotent(self, owner: str, tool: str, key: str, since: datetime) -> str | None:
        stmt = select(IDEMPOTENCY.c.result_id).where(
            IDEMPOTENCY.c.owner == owner,
            IDEMPOTENCY.c.tool == tool,
            IDEMPOTENCY.c.key == key,
            IDEMPOTENCY.c.created_at >= since,
        )
        value = await self._scalar(stmt)
        return None if value is None else str(value)

    async def remember_idempotent(self, row: IdempotencyRow) -> None:
        values = row.model_dump()
        stmt = self._insert(IDEMPOTENCY).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["owner", "tool", "key"],
            set_={"created_at": values["created_at"], "result_id": values["result_id"]},
        )
        await self.database.write(lambda conn: conn.execute(stmt))

    async def insert_task_once(
        self, task: TaskRow, key: IdempotencyRow, fresh_after: datetime, active_limit: int | None = None
    ) -> str:
        """Insert `task` under an idempotency key, in one transaction: unless the key already holds a
        task (remembered after `fresh_after` and still stored), whose id is returned instead; with
        `active_limit`, only if the owner has room (see `check_room`)."""

        def work(conn: Connection) -> str:
            holder = self._take_key(conn, key, fresh_after, TASKS)
            if holder is not None:
                return holder
            if active_limit is not None:
                check_room(conn, task.owner, active_limit)
            conn.execute(insert(TASKS).values(**task.model_dump()))
            self._notify(conn, "task", task.id)
            return task.id

        return await self.database.write(work)

    async def insert_run_once(
        self, run: RunRow, key: IdempotencyRow, fresh_after: datetime, start: Slots | None = None
    ) -> tuple[str, Claim]:
        """`insert_task_once` for a run, inserted as `insert_run` does (`start`): the run's id, or the
        id of the one the key already holds; and the run if it was started."""

        def work(conn: Connection) -> tuple[str, Claim]:
            holder = self._take_key(conn, key, fresh_after, RUNS)
            if holder is not None:
                return holder, Claim([], {})
            return run.id, self._queue_or_start(conn, run, start)

        return await self.database.write(work)

    def _take_key(
        self, conn: Connection, key: IdempotencyRow, fresh_after: datetime, held: Table
    ) -> str | None:
        """Make `key` hold `key.result_id`, unless it holds a record of `held` remembered after
        `fresh_after`: then that record's id. Concurrent calls with one key queue on its row, so
        exactly one of them takes it."""
        values = key.model_dump()
        still_held = select(held.c.id).where(held.c.id == IDEMPOTENCY.c.result_id).exists()
        stmt = (
            self._insert(IDEMPOTENCY)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["owner", "tool", "key"],
                set_={"created_at": values["created_at"], "result_id": values["result_id"]},
                where=or_(IDEMPOTENCY.c.created_at < fresh_after, ~still_held),
            )
        )
        if conn.execute(stmt).rowcount:
            return None
        holder = select(IDEMPOTENCY.c.result_id).where(
            IDEMPOTENCY.c.owner == key.owner, IDEMPOTENCY.c.tool == key.tool, IDEMPOTENCY.c.key == key.key
        )
        return str(conn.execute(holder).scalar_one())

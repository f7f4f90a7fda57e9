"""Tasks: what the service stores, reads, lists, changes and deletes (see `TaskStore`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from orchestrator_mcp.domain.run import RunStatus
from orchestrator_mcp.store.base import QUOTA_STATUSES, TaskQuotaFull
from orchestrator_mcp.store.sql import dialect
from orchestrator_mcp.store.sql.core import SqlBase
from orchestrator_mcp.store.sql.rows import fetch_one, model
from orchestrator_mcp.store.sql.statements import LOGS, RUNS, STEPS, TASK_BY_ID, TASKS
from orchestrator_mcp.store.tables import TaskRow


def check_room(conn: Connection, owner: str, limit: int, besides: str | None = None) -> None:
    """Within a write transaction: raises TaskQuotaFull when `owner` holds `limit` active or paused
    tasks (not counting `besides`). The count holds until the transaction ends (see
    `dialect.lock_owner_tasks`)."""
    dialect.lock_owner_tasks(conn, owner)
    held = select(func.count()).select_from(TASKS)
    held = held.where(TASKS.c.owner == owner, TASKS.c.status.in_(QUOTA_STATUSES))
    if besides is not None:
        held = held.where(TASKS.c.id != besides)
    if conn.execute(held).scalar_one() >= limit:
        raise TaskQuotaFull(owner, limit)


class TasksMixin(SqlBase):
    """Tasks, each method one transaction."""

    async def insert_task(self, task: TaskRow, active_limit: int | None = None) -> None:
        def work(conn: Connection) -> None:
            if active_limit is not None:
                check_room(conn, task.owner, active_limit)
            conn.execute(insert(TASKS).values(**task.model_dump()))
            self._notify(conn, "task", task.id)

        await self.database.write(work)

    async def get_task(self, task_id: str) -> TaskRow | None:
        return await self.database.read(lambda conn: fetch_one(conn, TASK_BY_ID, TaskRow, {"id": task_id}))

    async def list_tasks(
        self,
        owner: str | None,
        status: str | None,
        query: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[TaskRow]:
        """Tasks newest first; `after` is the (created_at, id) of the last task of the previous page."""
        stmt = select(TASKS)
        if owner is not None:
            stmt = stmt.where(TASKS.c.owner == owner)
        if status is not None:
            stmt = stmt.where(TASKS.c.status == status)
        if query:
            pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(
                    func.lower(TASKS.c.title).like(pattern, escape="\\"),
                    func.lower(TASKS.c.description).like(pattern, escape="\\"),
                )
            )
        if after is not None:
            stmt = stmt.where(
                or_(
                    TASKS.c.created_at < after[0], and_(TASKS.c.created_at == after[0], TASKS.c.id < after[1])
                )
            )
        stmt = stmt.order_by(TASKS.c.created_at.desc(), TASKS.c.id.desc()).limit(limit)
        return await self._rows(stmt, TaskRow)

    async def update_task(
        self, task_id: str, values: dict[str, Any], active_limit: int | None = None
    ) -> TaskRow | None:
        def work(conn: Connection) -> TaskRow | None:
            if active_limit is not None:
                owner = conn.execute(select(TASKS.c.owner).where(TASKS.c.id == task_id)).scalar()
                if owner is not None:
                    check_room(conn, owner, active_limit, besides=task_id)
            conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(**values))
            row = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
            self._notify(conn, "task", task_id)
            return None if row is None else model(TaskRow, row)

        return await self.database.write(work)

    async def delete_task(self, task_id: str) -> None:
        """Remove a task with its runs, steps and logs, in one transaction."""
        runs = select(RUNS.c.id).where(RUNS.c.task_id == task_id).scalar_subquery()

        def work(conn: Connection) -> None:
            conn.execute(delete(LOGS).where(LOGS.c.run_id.in_(runs)))
            conn.execute(delete(STEPS).where(STEPS.c.run_id.in_(runs)))
            conn.execute(delete(RUNS).where(RUNS.c.task_id == task_id))
            conn.execute(delete(TASKS).where(TASKS.c.id == task_id))
            self._notify(conn, "task", task_id)

        await self.database.write(work, slow=True)

    async def count_tasks(self, owner: str | None, status: str) -> int:
        stmt = select(func.count()).select_from(TASKS).where(TASKS.c.status == status)
        if owner is not None:
            stmt = stmt.where(TASKS.c.owner == owner)
        return int(await self._scalar(stmt))

    async def cancel_task_runs(self, task_id: str, now: datetime, running_too: bool) -> list[str]:
        """Cancel the queued runs of a task (and ask its running ones to stop); returns running run ids."""

        def work(conn: Connection) -> list[str]:
            conn.execute(
                update(RUNS)
                .where(RUNS.c.task_id == task_id, RUNS.c.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.CANCELLED.value, finished_at=now)
            )
            if not running_too:
                return []
            ids = select(RUNS.c.id).where(RUNS.c.task_id == task_id, RUNS.c.status == RunStatus.RUNNING.value)
            running = [row[0] for row in conn.execute(ids)]
            if running:
                conn.execute(update(RUNS).where(RUNS.c.id.in_(running)).values(cancel_requested=True))
                self._notify(conn, "cancel", task_id)
            return running

        return await self.database.write(work)

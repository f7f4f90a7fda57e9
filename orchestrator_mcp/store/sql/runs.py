"""Runs as the service sees them: queued by hand, read, listed, cancelled, counted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from orchestrator_mcp.domain.firing import ActiveRuns
from orchestrator_mcp.domain.run import RunStatus
from orchestrator_mcp.store.base import Claim, Slots
from orchestrator_mcp.store.sql.core import SqlBase
from orchestrator_mcp.store.sql.dialect import SQLITE, ended_since
from orchestrator_mcp.store.sql.fire import active_runs, ready_run_waits
from orchestrator_mcp.store.sql.queue import tasks_by_id
from orchestrator_mcp.store.sql.rows import fetch_one
from orchestrator_mcp.store.sql.statements import ACTIVE, RUN_BY_ID, RUN_INSERT, RUNS
from orchestrator_mcp.store.tables import RunRow


def _claimable_now(conn: Connection, run: RunRow) -> bool:
    if run.not_before > run.queued_at or ready_run_waits(conn, run.queued_at):
        return False
    return not run.exclusive or not active_runs(conn, [run.task_id]).get(run.task_id, ActiveRuns()).any


class RunsMixin(SqlBase):
    """Runs read and changed outside the engine, each method one transaction."""

    async def insert_run(self, run: RunRow, start: Slots | None = None) -> Claim:
        """Queue `run`, or with `start`, insert it already running on that instance if a claim made
        now would take it; returns the run so started, with its task (none if it was queued)."""
        return await self.database.write(lambda conn: self._queue_or_start(conn, run, start))

    def _queue_or_start(self, conn: Connection, run: RunRow, start: Slots | None) -> Claim:
        """Insert `run` as `insert_run` does, on `conn`.

        A claim made now would take it when a slot is free, it is ready, no other queued run is
        ready (it would come first: the claim orders them), and, of an exclusive task, nothing else
        of its task is queued or running. Then it starts here: no claim, and no wait for one."""
        values = run.model_dump()
        if start is not None and start.free > 0 and _claimable_now(conn, run):
            values |= {
                "status": RunStatus.RUNNING.value,
                "started_at": run.queued_at,
                "instance_id": start.instance_id,
            }
        RUN_INSERT.executemany(conn, [values])
        if values["status"] == RunStatus.QUEUED.value:
            self._notify(conn, "run", run.id)
            return Claim([], {})
        return Claim([RunRow.model_validate(values)], tasks_by_id(conn, {run.task_id}))

    async def get_run(self, run_id: str) -> RunRow | None:
        return await self.database.read(lambda conn: fetch_one(conn, RUN_BY_ID, RunRow, {"id": run_id}))

    async def list_runs(
        self,
        owner: str | None,
        task_id: str | None,
        status: str | None,
        since: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[RunRow]:
        """Runs newest first (by `queued_at`, then id); `after` continues a previous page."""
        stmt = select(RUNS)
        if owner is not None:
            stmt = stmt.where(RUNS.c.owner == owner)
        if task_id is not None:
            stmt = stmt.where(RUNS.c.task_id == task_id)
        if status is not None:
            stmt = stmt.where(RUNS.c.status == status)
        if since is not None:
            stmt = stmt.where(RUNS.c.queued_at >= since)
        if after is not None:
            stmt = stmt.where(
                or_(RUNS.c.queued_at < after[0], and_(RUNS.c.queued_at == after[0], RUNS.c.id < after[1]))
            )
        stmt = stmt.order_by(RUNS.c.queued_at.desc(), RUNS.c.id.desc()).limit(limit)
        return await self._rows(stmt, RunRow)

    async def cancel_queued(self, run_id: str, values: dict[str, Any]) -> bool:
        """End a queued run as cancelled; False if it was no longer queued."""
        stmt = (
            update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == RunStatus.QUEUED.value).values(**values)
        )
        return await self.database.write(lambda conn: bool(conn.execute(stmt).rowcount))

    async def queue_counts(self, owner: str | None) -> dict[str, int]:
        stmt = select(RUNS.c.status, func.count()).where(RUNS.c.status.in_(ACTIVE)).group_by(RUNS.c.status)
        if owner is not None:
            stmt = stmt.where(RUNS.c.owner == owner)
        return await self.database.read(
            lambda conn: {status: int(count) for status, count in conn.execute(stmt)}
        )

    async def run_stats(self, owner: str | None, since: datetime) -> dict[str, tuple[int, float | None]]:
        """Count and mean duration of runs finished since `since`, by status."""
        stmt = ended_since(self._dialect == SQLITE, owner is not None)
        params = {"since": since, "owner": owner}
        return await self.database.read(
            lambda conn: {status: (int(count), avg) for status, count, avg in conn.execute(stmt, params)}
        )

"""The queue: claiming ready runs for an instance, when to look again, and the loop's upkeep
(cancel requests, runs of dead instances, expired runs)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, or_, select

from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus
from orchestrator_mcp.store.base import Claim
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.sql.dialect import POSTGRESQL, lock_in_turn, next_ready, one_by_one
from orchestrator_mcp.store.sql.journal import JournalMixin
from orchestrator_mcp.store.sql.rows import chunks, fetch_one, models
from orchestrator_mcp.store.sql.shares import fair_picks, queued_at, waiting_owners
from orchestrator_mcp.store.sql.statements import (
    ACTIVE,
    IN_CHUNK,
    LOGS,
    RUNS,
    START_ORDER,
    START_RUN,
    START_RUNS,
    STEPS,
    TASK_BY_ID,
    TASKS_BY_ID,
)
from orchestrator_mcp.store.tables import RunRow, TaskRow, log_line


class QueueMixin(JournalMixin):
    """The engine's claim and upkeep (interrupting a run ends it as the journal does)."""

    @functools.cached_property
    def _claimable(self) -> DirectStatement:
        """One principal's ready queued runs, best first (`owner`, `now` and `candidates` bound per
        claim), read in ix_runs_ready's order; built once. Not locked: on PostgreSQL the claim locks
        only the runs it takes (`lock_in_turn`)."""
        running = RUNS.alias("running")
        busy = (
            select(running.c.id)
            .where(running.c.task_id == RUNS.c.task_id, running.c.status == RunStatus.RUNNING.value)
            .exists()
        )
        stmt = (
            select(RUNS.c.id, RUNS.c.task_id, RUNS.c.exclusive)
            .where(RUNS.c.status == RunStatus.QUEUED.value, RUNS.c.owner == bindparam("owner"))
            .where(RUNS.c.not_before <= bindparam("now"))
            .where(or_(RUNS.c.exclusive.is_(False), ~busy))
            .order_by(*START_ORDER)
            .limit(bindparam("candidates"))
        )
        return DirectStatement(stmt)

    async def claim(self, now: datetime, instance_id: str, limit: int) -> Claim:
        """Mark up to `limit` ready queued runs `running` on this instance, and read their tasks as
        stored at the claim, in the same transaction (what the engine needs to start them).

        Ready: `not_before` has passed, and for an exclusive task no other run of it is running.
        Which: the slots go round the principals with ready runs, fewest running first (see
        domain.queueing.share_slots and store.sql.shares); a principal's runs go in
        `RUN_START_ORDER`: priority (high first), then `scheduled_for`.

        Each waiting principal's first `4 × limit` ready runs are read and ranked in the order slots
        would go to them. On SQLite (the write lock held) the first `limit` are taken. On PostgreSQL
        they are locked down the ranking, skipping those another instance holds, until `limit` are
        taken: claims in flight together go on down the same ranking instead of waiting.
        """
        if limit <= 0:
            return Claim([], {})

        def work(conn: Connection) -> Claim:
            params = {"now": now, "candidates": limit * 4}
            candidates = {
                owner: self._claimable.all(conn, params | {"owner": owner}) for owner in waiting_owners(conn)
            }
            ready = {owner: _startable(rows) for owner, rows in candidates.items()}
            if self._dialect == POSTGRESQL:
                ranking = fair_picks(conn, ready, sum(map(len, ready.values())), queued_at(conn))
                exclusive = {
                    run_id: task for rows in candidates.values() for run_id, task, lone in rows if lone
                }
                chosen = lock_in_turn(conn, ranking, limit, exclusive)
            else:
                chosen = fair_picks(conn, ready, limit, queued_at(conn))
            if not chosen:
                return Claim([], {})
            runs = _start_runs(conn, chosen, now, instance_id)
            return Claim(runs, tasks_by_id(conn, {run.task_id for run in runs}))

        return await self.database.write(work)

    async def next_ready_at(self) -> datetime | None:
        """The earliest `not_before` among queued runs."""
        return await self.database.read(next_ready)

    async def cancel_requested(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs someone asked to cancel (from any process)."""
        ids = list(run_ids)
        if not ids:
            return set()
        stmt = select(RUNS.c.id).where(RUNS.c.id.in_(ids), RUNS.c.cancel_requested.is_(True))
        return set(await self._column(stmt))

    async def orphaned_running_runs(self, live_instances: Sequence[str]) -> list[str]:
        """Instance ids that hold running runs but are not among the live ones."""
        stmt = (
            select(RUNS.c.instance_id)
            .where(RUNS.c.status == RunStatus.RUNNING.value, RUNS.c.instance_id.not_in(list(live_instances)))
            .distinct()
        )
        return [instance for instance in await self._column(stmt) if instance is not None]

    async def interrupt_runs(self, instance_ids: Sequence[str], now: datetime, reason: str) -> list[str]:
        """Mark the running runs of dead instances `interrupted`; returns their ids."""
        if not instance_ids:
            return []
        stmt = select(RUNS.c.id).where(
            RUNS.c.status == RunStatus.RUNNING.value, RUNS.c.instance_id.in_(list(instance_ids))
        )
        run_ids: list[str] = await self._column(stmt)
        for run_id in run_ids:
            end = RunEnd(RunStatus.INTERRUPTED, now, RunError(ErrorType.INTERRUPTED, reason))
            if await self.finish_run(run_id, end.columns(), now):
                await self.append_logs([log_line(run_id, now, "ERROR", reason)])
        return run_ids

    async def delete_expired_runs(self, older_than: datetime, keep_per_task: int) -> int:
        """Delete ended runs queued before `older_than`, with their steps and logs, in one transaction.

        The newest `keep_per_task` runs of each task are kept whatever their age, and queued or
        running runs are never deleted. Returns how many runs were deleted.
        """
        rank = (
            func.row_number()
            .over(partition_by=RUNS.c.task_id, order_by=(RUNS.c.queued_at.desc(), RUNS.c.id.desc()))
            .label("rank")
        )
        ranked = select(RUNS.c.id, RUNS.c.queued_at, RUNS.c.status, rank).subquery()
        doomed = select(ranked.c.id).where(
            ranked.c.rank > keep_per_task, ranked.c.queued_at < older_than, ranked.c.status.not_in(ACTIVE)
        )

        def work(conn: Connection) -> int:
            run_ids = [row[0] for row in conn.execute(doomed)]
            for chunk in chunks(run_ids, IN_CHUNK):
                conn.execute(delete(LOGS).where(LOGS.c.run_id.in_(chunk)))
                conn.execute(delete(STEPS).where(STEPS.c.run_id.in_(chunk)))
                conn.execute(delete(RUNS).where(RUNS.c.id.in_(chunk)))
            return len(run_ids)

        return await self.database.write(work, slow=True)


def _startable(candidates: list[tuple[str, str, bool]]) -> list[str]:
    """The ids of a principal's candidates (id, task, exclusive) that may start together, best first:
    one run per exclusive task."""
    startable: list[str] = []
    exclusive_started: set[str] = set()
    for run_id, task_id, exclusive in candidates:
        if exclusive and task_id in exclusive_started:
            continue
        startable.append(run_id)
        if exclusive:
            exclusive_started.add(task_id)
    return startable


def _start_runs(conn: Connection, chosen: list[str], now: datetime, instance_id: str) -> list[RunRow]:
    """Mark these queued runs running on the instance; returns them, in the order of `chosen`."""
    params = {"now": now, "instance": instance_id}
    if one_by_one(conn, len(chosen)):
        started = (fetch_one(conn, START_RUN, RunRow, params | {"run_key": run_id}) for run_id in chosen)
        return [run for run in started if run is not None]
    rank = {run_id: index for index, run_id in enumerate(chosen)}
    claimed = conn.execute(START_RUNS, params | {"ids": chosen})
    return sorted(models(RunRow, claimed), key=lambda run: rank[run.id])


def tasks_by_id(conn: Connection, task_ids: set[str]) -> dict[str, TaskRow]:
    """These tasks by id (those that still exist): one direct read each for a few on SQLite (see
    `ONE_BY_ONE`), otherwise one query per chunk of ids."""
    found: dict[str, TaskRow] = {}
    if one_by_one(conn, len(task_ids)):
        for task_id in task_ids:
            if (task := fetch_one(conn, TASK_BY_ID, TaskRow, {"id": task_id})) is not None:
                found[task_id] = task
        return found
    for chunk in chunks(sorted(task_ids), IN_CHUNK):
        for task in models(TaskRow, conn.execute(TASKS_BY_ID, {"ids": chunk})):
            found[task.id] = task
    return found

"""Firing: due fire times become runs, and their tasks move on, in one transaction."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from orchestrator_mcp.domain.firing import ActiveRuns, OpenSkip, Skip, may_skip
from orchestrator_mcp.domain.queueing import sort_in_start_order
from orchestrator_mcp.domain.run import ErrorType, RunStatus, TaskStatus
from orchestrator_mcp.domain.task_state import status_after_fire
from orchestrator_mcp.store.base import Claim, Fired, FirePlanner, RunFactory, Slots
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.sql.core import SqlBase
from orchestrator_mcp.store.sql.dialect import POSTGRESQL, next_ready, skip_locked
from orchestrator_mcp.store.sql.rows import aware, chunks, models
from orchestrator_mcp.store.sql.shares import fair_picks
from orchestrator_mcp.store.sql.statements import (
    ACTIVE_COUNTS,
    IN_CHUNK,
    LATEST_SKIP,
    MOVE_TASKS,
    NEXT_DUE,
    RUNS,
    TASKS,
    run_columns_update,
    run_params,
)
from orchestrator_mcp.store.tables import RunRow, TaskRow, from_row


class FireMixin(SqlBase):
    """The engine's fire: due tasks into runs."""

    async def next_due_at(self) -> datetime | None:
        return aware(await self._scalar(NEXT_DUE))

    async def fire_due(
        self,
        now: datetime,
        planner: FirePlanner,
        runs_for: RunFactory,
        limit: int,
        slots: Slots | None = None,
    ) -> Fired:
        """Claim up to `limit` due fire times in one transaction.

        A fire time yields its run rows and moves the task's `next_run_at` in the same commit, and
        runs are unique on (task, fire key): however many processes race here, one wins each fire.
        A fire skipped by the overlap policy that continues the task's latest skipped record extends
        it (one UPDATE) instead of inserting a row (see `_with_latest_skip`).

        With `slots`, up to `slots.free` fire times are claimed if that is more, and when they are
        every one due (none left for a later transaction to weigh against them), the runs a claim
        would start at once go in already running on that instance (see `_start_at_fire`). A burst
        of due tasks then needs no second transaction, nor its tasks read again; the rest of its
        runs stay queued.
        """
        batch = limit if slots is None else max(limit, slots.free)
        read = batch if slots is None else batch + 1  # one more tells whether `batch` holds every one due

        def work(conn: Connection) -> Fired:
            due = list(models(TaskRow, conn.execute(self._due_tasks, {"now": now, "limit": read})))
            whole = len(due) <= batch
            tasks = {task.id: task for task in due[:batch]}
            active = active_runs(conn, list(tasks))
            for task in tasks.values():
                if task.id in active and may_skip(task.policy):
                    active[task.id] = _with_latest_skip(conn, task, active[task.id])
            runs: list[dict[str, Any]] = []
            extended: list[dict[str, Any]] = []
            moves: list[dict[str, Any]] = []
            for task in tasks.values():
                plan = planner(task, active.get(task.id, ActiveRuns()))
                rows = runs_for(task, plan)
                for planned, row in zip(plan.runs, rows, strict=True):
                    if planned.extends is None or planned.skipped is None:
                        runs.append(row)
                    else:  # one UPDATE of the record it extends, instead of a row per skipped fire
                        values = planned.skipped.columns() | {"finished_at": now}
                        extended.append(run_params(planned.extends, values))
                if plan.cancel_active:
                    self._cancel_active(conn, task.id, now, exclude={row["id"] for row in rows})
                status = status_after_fire(TaskStatus(task.status), plan)
                moves.append(
                    {
                        "task_key": task.id,
                        "new_next": plan.next_run_at,
                        "new_status": status.value,
                        "moved_at": now,
                    }
                )
            starting: list[dict[str, Any]] = []
            if slots is not None and whole and runs and not ready_run_waits(conn, now):
                starting = _start_at_fire(conn, runs, active, now, slots)
            queued, started = self._insert_fired(conn, runs)
            run_columns_update(SKIP_EXTENSION).executemany(conn, extended)
            MOVE_TASKS.executemany(conn, moves)
            if queued:  # an instance with free slots may start them before this one gets to
                self._notify(conn, "run", "fired")
            begun = [from_row(RunRow, row) for row in starting if row["id"] in started]
            return Fired(queued, Claim(begun, {run.task_id: tasks[run.task_id] for run in begun}))

        return await self.database.write(work)

    def _cancel_active(self, conn: Connection, task_id: str, now: datetime, exclude: set[str]) -> None:
        conn.execute(
            update(RUNS)
            .where(
                RUNS.c.task_id == task_id, RUNS.c.status == RunStatus.QUEUED.value, RUNS.c.id.not_in(exclude)
            )
            .values(status=RunStatus.CANCELLED.value, finished_at=now)
        )
        conn.execute(
            update(RUNS)
            .where(RUNS.c.task_id == task_id, RUNS.c.status == RunStatus.RUNNING.value)
            .values(cancel_requested=True)
        )
        self._notify(conn, "cancel", task_id)

    @functools.cached_property
    def _due_tasks(self) -> Any:
        """Active tasks due at `now`, earliest first, at most `limit` (both bound per fire); built once.

        PostgreSQL: locked, skipping those another instance is firing."""
        stmt = (
            select(TASKS)
            .where(TASKS.c.status == TaskStatus.ACTIVE.value, TASKS.c.next_run_at <= bindparam("now"))
            .order_by(TASKS.c.next_run_at)
            .limit(bindparam("limit"))
        )
        return skip_locked(self._dialect, stmt)

    @functools.cached_property
    def _insert_runs(self) -> DirectStatement:
        """Insert runs, skipping fire times already taken (unique task + fire key); built once."""
        return DirectStatement(self._insert(RUNS).on_conflict_do_nothing())

    @functools.cached_property
    def _insert_runs_returning(self) -> Any:
        return self._insert(RUNS).on_conflict_do_nothing().returning(RUNS.c.id, RUNS.c.status)

    def _insert_fired(self, conn: Connection, runs: list[dict[str, Any]]) -> tuple[int, set[str]]:
        """Insert a fire's runs (see `_insert_runs`); returns how many queued runs went in, and the
        ids of the running ones (started at the fire) that did."""
        queued, running = RunStatus.QUEUED.value, RunStatus.RUNNING.value
        if not runs:
            return 0, set()
        if self._dialect == POSTGRESQL:  # an executemany's row count is not reliable there
            inserted = list(conn.execute(self._insert_runs_returning, runs))
            started = {run_id for run_id, status in inserted if status == running}
            return [status for _, status in inserted].count(queued), started
        starting = [row for row in runs if row["status"] == running]
        self._insert_runs.executemany(conn, [row for row in runs if row["status"] not in (queued, running)])
        count = self._insert_runs.executemany(conn, [row for row in runs if row["status"] == queued])
        if self._insert_runs.executemany(conn, starting) == len(starting):
            return count, {row["id"] for row in starting}
        # Some fire time was taken already (a skipped insert): those runs' ids, new, are not stored.
        ids = [row["id"] for row in starting]
        stored = {run_id for chunk in chunks(ids, IN_CHUNK) for run_id in _stored_run_ids(conn, chunk)}
        return count, stored


def _start_at_fire(
    conn: Connection, runs: list[dict[str, Any]], active: dict[str, ActiveRuns], now: datetime, slots: Slots
) -> list[dict[str, Any]]:
    """The queued runs of a fire that a claim right after it would start, marked running on the
    instance of `slots` (the rows are changed in place): at most `slots.free`, shared across
    principals as a claim shares them, each principal's best first (domain.queueing).

    Called only when no other queued run is ready, so these are all a claim would see: runs whose
    `not_before` has passed (no jitter left), and of an exclusive task only its one run of this fire
    when nothing else of it is queued or running (else the claim decides, after the fire).
    """
    queued = RunStatus.QUEUED.value
    ready = [row for row in runs if row["status"] == queued and row["not_before"] <= now]
    per_task = Counter(row["task_id"] for row in ready)

    def may_start(row: dict[str, Any]) -> bool:
        task_id = row["task_id"]
        return not row["exclusive"] or (per_task[task_id] == 1 and not active.get(task_id, ActiveRuns()).any)

    chosen = [row for row in ready if may_start(row)]
    sort_in_start_order(chosen)
    by_owner: dict[str, list[str]] = {}
    for row in chosen:
        by_owner.setdefault(row["owner"], []).append(row["id"])
    queued_at = {row["id"]: row["queued_at"] for row in chosen}
    picked = set(fair_picks(conn, by_owner, slots.free, queued_at.__getitem__))
    starting = [row for row in chosen if row["id"] in picked]
    for row in starting:
        row.update(status=RunStatus.RUNNING.value, started_at=now, instance_id=slots.instance_id)
    return starting


SKIP_EXTENSION = ("error", "finished_at", "last_scheduled_for", "skipped_fires")
"""The columns a fire sets on a skipped record it extends (`PlannedRun.extends`)."""


def _with_latest_skip(conn: Connection, task: TaskRow, active: ActiveRuns) -> ActiveRuns:
    """`active` with the task's latest skipped record and when a run of it last started: what the
    planner needs to extend the record rather than add one (domain.firing.extend_skip).

    The fire holds its task (the row lock of PostgreSQL's fire, SQLite's write lock), so no other
    fire of the task reads or extends the record meanwhile. The last start is the latest of the task's
    running runs and its `last_run_at` (the start of its latest ended run: the runs of a task that
    may skip are exclusive, so they end in the order they start)."""
    found = LATEST_SKIP.first(conn, {"task": task.id})
    if found is None:
        return active
    run_id, first, last, fires, recorded_at, error, running_since = found
    # Only an overlap record is extended; another (a misfire's) ends the stretch.
    kind = ErrorType.OVERLAP if (error or {}).get("type") == ErrorType.OVERLAP.value else ErrorType.MISFIRE
    latest = OpenSkip(run_id, Skip(kind, "", first, last or first, fires or 1), recorded_at)
    starts = [moment for moment in (aware(running_since), task.last_run_at) if moment is not None]
    return replace(active, latest_skip=latest, last_start=max(starts, default=None))


def ready_run_waits(conn: Connection, now: datetime) -> bool:
    """Whether a queued run is ready: a claim may owe it a slot before the runs of a fire."""
    ready = next_ready(conn)
    return ready is not None and ready <= now


def _stored_run_ids(conn: Connection, ids: list[str]) -> list[str]:
    return [row[0] for row in conn.execute(select(RUNS.c.id).where(RUNS.c.id.in_(ids)))]


def active_runs(conn: Connection, task_ids: list[str]) -> dict[str, ActiveRuns]:
    """Queued and running counts of these tasks' runs, in one query per chunk of ids."""
    counts: dict[str, dict[str, int]] = {}
    for chunk in chunks(task_ids, IN_CHUNK):
        for task_id, status, count in conn.execute(ACTIVE_COUNTS, {"ids": chunk}):
            counts.setdefault(task_id, {})[status] = count
    return {
        task_id: ActiveRuns(
            queued=by.get(RunStatus.QUEUED.value, 0), running=by.get(RunStatus.RUNNING.value, 0)
        )
        for task_id, by in counts.items()
    }

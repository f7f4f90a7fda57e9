"""Where SQLite and PostgreSQL differ: statements for one planner, locks and notices for the other.

SQLite: one process writes at a time (the write lock is taken at `BEGIN IMMEDIATE`), other processes
poll the file, and its planner, without statistics, is told which index to use; the hottest
statements run straight on sqlite3's cursor (see store.direct). PostgreSQL: instances write at once,
so the rows a fire or claim takes are locked (skipping those another instance holds), and they tell
each other of changes with notices (see store.notices).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, column, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator_mcp.domain.run import RunStatus
from orchestrator_mcp.store import notices
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.sql.rows import aware
from orchestrator_mcp.store.sql.statements import NEXT_READY, RUNS, TASKS
from orchestrator_mcp.store.tables import UTCDateTime

POSTGRESQL = "postgresql"
SQLITE = "sqlite"

ONE_BY_ONE = 64
"""On SQLite a claim of up to this many runs starts them, and reads their tasks, with one direct
statement each (~70 µs a run); a larger one with `IN` lists through SQLAlchemy, whose markers are
made per execution (~50 µs a run plus ~1.5 ms). Measured on claims of 16 to 1,000 runs."""


def one_by_one(conn: Connection, count: int) -> bool:
    """Whether `count` rows are best started or read with one direct statement each (see `ONE_BY_ONE`)."""
    return conn.dialect.name == SQLITE and count <= ONE_BY_ONE


def insert_for(dialect: str, table: Table) -> Any:
    """An INSERT into `table` of the dialect's own kind, which has `on_conflict_do_*`."""
    return (postgresql.insert if dialect == POSTGRESQL else sqlite.insert)(table)


def notify(dialect: str, conn: Connection, topic: str, subject: str) -> None:
    """Tell the other instances (PostgreSQL) once this transaction commits; SQLite ones poll."""
    if dialect == POSTGRESQL:
        notices.notify(conn, topic, subject)


TASK_QUOTA_LOCK = 0x71756F74
"""PostgreSQL advisory lock space (with the owner's name hashed) held while a task quota is counted."""


def lock_owner_tasks(conn: Connection, owner: str) -> None:
    """PostgreSQL: hold the lock on `owner`'s task quota until this transaction ends, so concurrent
    inserts of one owner count one after the other; SQLite: nothing (its write lock covers the file)."""
    if conn.dialect.name == POSTGRESQL:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:owner))"),
            {"space": TASK_QUOTA_LOCK, "owner": owner},
        )


def skip_locked(dialect: str, stmt: Select[Any], of: Table | None = None) -> Select[Any]:
    """PostgreSQL: `stmt` locking the rows it reads (of `of`), skipping those another instance holds;
    SQLite: `stmt` as it is (its write lock, taken at `BEGIN IMMEDIATE`, covers the whole file)."""
    return stmt.with_for_update(skip_locked=True, of=of) if dialect == POSTGRESQL else stmt


NEXT_READY_SQLITE = DirectStatement(
    text(
        "SELECT min(not_before) AS next_ready FROM runs INDEXED BY ix_runs_queued_not_before"
        " WHERE status = 'queued'"
    ).columns(column("next_ready"))
)
"""SQLite's planner, without statistics, takes ix_runs_ready for `status = 'queued'` and reads every
queued run (10 ms with 80,000 queued); the partial index answers from its first entry."""


def next_ready(conn: Connection) -> datetime | None:
    """The earliest `not_before` among queued runs."""
    if conn.dialect.name != SQLITE:
        return aware(conn.execute(NEXT_READY).scalar())
    found = NEXT_READY_SQLITE.first(conn, {})
    return aware(None if found is None else found[0])


def lock_idle_tasks(conn: Connection, task_ids: set[str]) -> set[str]:
    """PostgreSQL: lock these tasks (skipping locked ones); those of them with no running run.

    Two instances may each have picked a different queued run of one exclusive task before
    either committed; whoever locks the task first claims, and the other, on taking the lock
    later, sees the committed running run (each statement reads the latest commits).
    """
    if not task_ids:
        return set()
    lock = select(TASKS.c.id).where(TASKS.c.id.in_(sorted(task_ids))).with_for_update(skip_locked=True)
    locked = [row[0] for row in conn.execute(lock)]
    if not locked:
        return set()
    running = select(RUNS.c.task_id).where(
        RUNS.c.task_id.in_(locked), RUNS.c.status == RunStatus.RUNNING.value
    )
    return set(locked) - {row[0] for row in conn.execute(running)}


def lock_in_turn(conn: Connection, ranking: list[str], limit: int, exclusive: dict[str, str]) -> list[str]:
    """PostgreSQL: the first `limit` runs of `ranking` that this claim could lock, in its order.

    A run is taken when it is still queued and no other instance holds it (locked, skipping those
    held), and, of an exclusive task (`exclusive`: run id -> task id), when `lock_idle_tasks` finds
    its task idle. Runs are locked a slot's worth at a time, so the claim locks what it takes (and
    the few it found taken), not every candidate: instances claiming together each go on down the
    ranking past the runs the others hold.
    """
    chosen: list[str] = []
    position = 0
    while len(chosen) < limit and position < len(ranking):
        batch = ranking[position : position + limit - len(chosen)]
        position += len(batch)
        lock = (
            select(RUNS.c.id)
            .where(RUNS.c.id.in_(batch), RUNS.c.status == RunStatus.QUEUED.value)
            .with_for_update(skip_locked=True)
        )
        locked = {row[0] for row in conn.execute(lock)}
        idle = lock_idle_tasks(conn, {exclusive[run_id] for run_id in locked if run_id in exclusive})
        chosen += [
            run_id
            for run_id in batch
            if run_id in locked and (run_id not in exclusive or exclusive[run_id] in idle)
        ]
    return chosen


@functools.cache
def ended_since(on_sqlite: bool, by_owner: bool) -> Any:
    """Runs ended since `:since` (of `:owner`), counted and averaged by status, read by end time.

    SQLite's planner, without statistics, would read every run in `ix_runs_ready` for the sake of
    the grouping (22 ms with 100,000 runs), so there the statement names its index."""
    if on_sqlite:
        owner = " AND owner = :owner" if by_owner else ""
        return text(
            "SELECT status, count(*), avg(duration_ms) FROM runs INDEXED BY ix_runs_finished"
            f" WHERE finished_at >= :since{owner} GROUP BY status"
        ).bindparams(bindparam("since", type_=UTCDateTime()))
    stmt = select(RUNS.c.status, func.count(), func.avg(RUNS.c.duration_ms))
    stmt = stmt.where(RUNS.c.finished_at >= bindparam("since")).group_by(RUNS.c.status)
    return stmt.where(RUNS.c.owner == bindparam("owner")) if by_owner else stmt

"""The SQL store: every read and write of durable state, one short transaction each.

Each method is one unit of work for a `Database` (see store.engine): plain SQLAlchemy Core on one
connection, on stdlib sqlite3 (on the event loop, or a worker thread when the file is locked) or
on asyncpg. On SQLite the hot statements (firing, claiming, a run's writes, the reads of one task,
run or run's steps) go straight to sqlite3's cursor (see store.direct). Writes open with
`BEGIN IMMEDIATE` on SQLite (the write lock is taken up front, so two processes never deadlock
upgrading a read lock) and are serialised inside the process, so a tool call never meets "database
is locked": it waits its turn, up to the busy timeout.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from orchestrator_mcp.domain.firing import ActiveRuns
from orchestrator_mcp.domain.run import ACTIVE_RUN_STATUSES, RunStatus, TaskStatus
from orchestrator_mcp.store import notices

# Re-exported: their home is store.base, but other modules still import them from here.
from orchestrator_mcp.store.base import Claim as Claim
from orchestrator_mcp.store.base import Fired as Fired
from orchestrator_mcp.store.base import FirePlanner as FirePlanner
from orchestrator_mcp.store.base import Progress as Progress
from orchestrator_mcp.store.base import RunFactory as RunFactory
from orchestrator_mcp.store.base import Slots as Slots
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.engine import Database, migrate, open_database
from orchestrator_mcp.store.group_commit import GroupCommit
from orchestrator_mcp.store.tables import (
    IdempotencyRow,
    InstanceRow,
    LogRow,
    LogValues,
    RunRow,
    StepRow,
    StepValues,
    TaskRow,
    UTCDateTime,
    from_row,
    log_line,
)

ModelT = TypeVar("ModelT", bound=SQLModel)

TASKS: Table = TaskRow.__table__  # type: ignore[attr-defined]
RUNS: Table = RunRow.__table__  # type: ignore[attr-defined]
STEPS: Table = StepRow.__table__  # type: ignore[attr-defined]
LOGS: Table = LogRow.__table__  # type: ignore[attr-defined]
IDEMPOTENCY: Table = IdempotencyRow.__table__  # type: ignore[attr-defined]
INSTANCES: Table = InstanceRow.__table__  # type: ignore[attr-defined]

ACTIVE = [status.value for status in ACTIVE_RUN_STATUSES]
IN_CHUNK = 500
"""Ids per `IN (...)` list (well under SQLite's bound-parameter limit)."""

_START_RUNS = (
    update(RUNS)
    .where(RUNS.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=RunStatus.RUNNING.value, started_at=bindparam("now"), instance_id=bindparam("instance"))
    .returning(*RUNS.c)
)
"""Mark claimed runs running on an instance (statements built once: building one costs more than
running it)."""
_START_RUN = DirectStatement(
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_key"))
    .values(status=RunStatus.RUNNING.value, started_at=bindparam("now"), instance_id=bindparam("instance"))
    .returning(*RUNS.c)
)
"""`_START_RUNS` for one run, run directly on SQLite for claims of up to `ONE_BY_ONE` runs."""
ONE_BY_ONE = 64
"""On SQLite a claim of up to this many runs starts them, and reads their tasks, with one direct
statement each (~70 µs a run); a larger one with `IN` lists through SQLAlchemy, whose markers are
made per execution (~50 µs a run plus ~1.5 ms). Measured on claims of 16 to 1,000 runs."""
_MOVE_TASKS = DirectStatement(
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_key"))
    .values(
        next_run_at=bindparam("new_next"), status=bindparam("new_status"), updated_at=bindparam("moved_at")
    )
)
"""Move fired tasks to their next fire time (and status), all of a fire in one executemany."""


def _if_run_stored(table: Table, keys: Sequence[str]) -> Any:
    """`SELECT :key, ...` of a row of `table`, only if its run (`:run_id`) is stored: the source of an
    insert that drops the records of a run deleted while it ran (its task deleted), looked up in the
    writing statement itself, so a delete comes wholly before or after."""
    run_id = bindparam("run_id", type_=RUNS.c.id.type)
    stored = select(RUNS.c.id).where(RUNS.c.id == run_id).exists()
    return select(
        *(run_id if key == "run_id" else bindparam(key, type_=table.c[key].type) for key in keys)
    ).where(stored)


_LOG_KEYS = [column.name for column in LOGS.c if column.name != "id"]
_LOG_INSERT = DirectStatement(insert(LOGS).from_select(_LOG_KEYS, _if_run_stored(LOGS, _LOG_KEYS)))
"""Append log lines of runs still stored (their ids come from the database)."""
_ACTIVE_COUNTS = (
    select(RUNS.c.task_id, RUNS.c.status, func.count())
    .where(RUNS.c.task_id.in_(bindparam("ids", expanding=True)), RUNS.c.status.in_(ACTIVE))
    .group_by(RUNS.c.task_id, RUNS.c.status)
)
_TASKS_BY_ID = select(TASKS).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
_TASK_BY_ID = DirectStatement(select(TASKS).where(TASKS.c.id == bindparam("id")))
_RUN_BY_ID = DirectStatement(select(RUNS).where(RUNS.c.id == bindparam("id")))
_STEPS_OF_RUN = DirectStatement(
    select(STEPS).where(STEPS.c.run_id == bindparam("run_id")).order_by(STEPS.c.seq)
)
_RUN_INSERT = DirectStatement(insert(RUNS))
_NEXT_DUE = select(func.min(TASKS.c.next_run_at)).where(TASKS.c.status == TaskStatus.ACTIVE.value)
_NEXT_READY = select(func.min(RUNS.c.not_before)).where(RUNS.c.status == literal_column("'queued'"))
"""The earliest `not_before` of the queue; the literal status matches the partial index
ix_runs_queued_not_before (a bound parameter would not)."""
_NEXT_READY_SQLITE = DirectStatement(
    text(
        "SELECT min(not_before) AS next_ready FROM runs INDEXED BY ix_runs_queued_not_before"
        " WHERE status = 'queued'"
    ).columns(column("next_ready"))
)
"""SQLite's planner, without statistics, takes ix_runs_ready for `status = 'queued'` and reads every
queued run (10 ms with 80,000 queued); the partial index answers from its first entry."""

ItemT = TypeVar("ItemT")


def _chunks(items: list[ItemT], size: int) -> Iterator[list[ItemT]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _model(cls: type[ModelT], row: Any) -> ModelT:
    """A table object from a whole row; a plain dict of it first, which `from_row` compares and copies
    in a third of the time a row's mapping view takes (13 -> 5 us a task row)."""
    return from_row(cls, dict(zip(row._fields, row, strict=True)))


def _one(
    conn: Connection, statement: DirectStatement, cls: type[ModelT], params: dict[str, Any]
) -> ModelT | None:
    """The first row `statement` returns, as a `cls`, or None."""
    row = statement.first(conn, params)
    return None if row is None else from_row(cls, dict(zip(statement.columns, row, strict=True)))


def _all(
    conn: Connection, statement: DirectStatement, cls: type[ModelT], params: dict[str, Any]
) -> list[ModelT]:
    """Every row `statement` returns, as a `cls`."""
    return [
        from_row(cls, dict(zip(statement.columns, row, strict=True))) for row in statement.all(conn, params)
    ]


def _models(cls: type[ModelT], result: Any) -> Iterator[ModelT]:
    """`_model` of every row of a result, its column names read once (a row rebuilds them each time)."""
    names = tuple(result.keys())
    for row in result:
        yield from_row(cls, dict(zip(names, row, strict=True)))


class SqlStore:
    """Durable state on SQLite or PostgreSQL: each method is one transaction (see store.engine)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._progress = GroupCommit[Progress](self._write_progress)
        self._dialect = database.dialect

    @classmethod
    async def open(cls, url: str, pool_size: int = 5) -> SqlStore:
        """Connect to `url` and bring its schema up to date.

        Raises:
            Unavailable: the database cannot be reached or used, or is newer than this server.
        """
        database = open_database(url, pool_size)
        try:
            await migrate(database)
        except BaseException:
            await database.dispose()
            raise
        return cls(database)

    async def close(self) -> None:
        """Close every pooled connection (not cut by cancellation: it usually runs at shutdown)."""
        await self.database.dispose()

    async def _rows(self, stmt: Any, cls: type[ModelT]) -> list[ModelT]:
        return await self.database.read(lambda conn: list(_models(cls, conn.execute(stmt))))

    async def _scalar(self, stmt: Any) -> Any:
        return await self.database.read(lambda conn: conn.execute(stmt).scalar_one_or_none())

    async def _column(self, stmt: Any) -> list[Any]:
        return await self.database.read(lambda conn: [row[0] for row in conn.execute(stmt)])

    def _notify(self, conn: Connection, topic: str, subject: str) -> None:
        """Tell the other instances (PostgreSQL) once this transaction commits; SQLite ones poll."""
        if self._dialect == "postgresql":
            notices.notify(conn, topic, subject)

    async def listen(self, on_notice: notices.NoticeHandler) -> None:
        """Call `on_notice` with the topic of each notice other instances send, until cancelled.

        On SQLite there are none (processes poll the file): this just waits to be cancelled.
        """
        if self._dialect != "postgresql":
            await anyio.sleep_forever()
        await notices.listen(notices.listener_dsn(self.database.url), on_notice)

    def _insert(self, table: Table) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    @functools.cached_property
    def _step_upsert(self) -> DirectStatement:
        """Insert a step record of a run still stored, or overwrite it; built once (building it costs
        more than running it)."""
        keys = [column.name for column in STEPS.c]
        upsert = self._insert(STEPS).from_select(keys, _if_run_stored(STEPS, keys))
        primary = ("run_id", "seq")
        return DirectStatement(
            upsert.on_conflict_do_update(
                index_elements=list(primary),
                set_={key: upsert.excluded[key] for key in keys if key not in primary},
            )
        )

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
        if self._dialect == "postgresql":  # an executemany's row count is not reliable there
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
        stored = {run_id for chunk in _chunks(ids, IN_CHUNK) for run_id in _stored_run_ids(conn, chunk)}
        return count, stored

    async def ping(self) -> None:
        await self._scalar(select(1))

    # -- tasks -------------------------------------------------------------------------------

    async def insert_task(self, task: TaskRow) -> None:
        def work(conn: Connection) -> None:
            conn.execute(insert(TASKS).values(**task.model_dump()))
            self._notify(conn, "task", task.id)

        await self.database.write(work)

    async def get_task(self, task_id: str) -> TaskRow | None:
        return await self.database.read(lambda conn: _one(conn, _TASK_BY_ID, TaskRow, {"id": task_id}))

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

    async def update_task(self, task_id: str, values: dict[str, Any]) -> TaskRow | None:
        def work(conn: Connection) -> TaskRow | None:
            conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(**values))
            row = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
            self._notify(conn, "task", task_id)
            return None if row is None else _model(TaskRow, row)

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

    async def next_due_at(self) -> datetime | None:
        return _aware(await self._scalar(_NEXT_DUE))

    # -- firing ------------------------------------------------------------------------------

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

        With `slots`, up to `slots.free` fire times are claimed if that is more, and when they are
        every one due (none left for a later transaction to weigh against them), the runs a claim
        would start at once go in already running on that instance (see `_start_at_fire`). A burst
        of due tasks then needs no second transaction, nor its tasks read again; the rest of its
        runs stay queued.
        """
        batch = limit if slots is None else max(limit, slots.free)
        read = batch if slots is None else batch + 1  # one more tells whether `batch` holds every one due

        def work(conn: Connection) -> Fired:
            due = list(_models(TaskRow, conn.execute(self._due_tasks, {"now": now, "limit": read})))
            whole = len(due) <= batch
            tasks = {task.id: task for task in due[:batch]}
            active = _active_runs(conn, list(tasks))
            runs: list[dict[str, Any]] = []
            moves: list[dict[str, Any]] = []
            for task in tasks.values():
                plan = planner(task, active.get(task.id, ActiveRuns()))
                rows = runs_for(task, plan)
                runs += rows
                if plan.cancel_active:
                    self._cancel_active(conn, task.id, now, exclude={row["id"] for row in rows})
                status = TaskStatus(task.status)
                if plan.completed:
                    status = TaskStatus.COMPLETED
                elif plan.broken is not None:
                    status = TaskStatus.PAUSED
                moves.append(
                    {
                        "task_key": task.id,
                        "new_next": plan.next_run_at,
                        "new_status": status.value,
                        "moved_at": now,
                    }
                )
            starting: list[dict[str, Any]] = []
            if slots is not None and whole and runs and not _ready_run_waits(conn, now):
                starting = _start_at_fire(runs, active, now, slots)
            queued, started = self._insert_fired(conn, runs)
            _MOVE_TASKS.executemany(conn, moves)
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

    # -- runs --------------------------------------------------------------------------------

    async def insert_run(self, run: RunRow) -> None:
        def work(conn: Connection) -> None:
            _RUN_INSERT.executemany(conn, [run.model_dump()])
            self._notify(conn, "run", run.id)

        await self.database.write(work)

    async def get_run(self, run_id: str) -> RunRow | None:
        return await self.database.read(lambda conn: _one(conn, _RUN_BY_ID, RunRow, {"id": run_id}))

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
        if self._dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt

    @functools.cached_property
    def _claimable(self) -> DirectStatement:
        """Ready queued runs, best first (`now` and `limit` bound per claim); built once."""
        running = RUNS.alias("running")
        busy = (
            select(running.c.id)
            .where(running.c.task_id == RUNS.c.task_id, running.c.status == RunStatus.RUNNING.value)
            .exists()
        )
        stmt = (
            select(RUNS.c.id, RUNS.c.task_id, RUNS.c.exclusive)
            .where(RUNS.c.status == RunStatus.QUEUED.value, RUNS.c.not_before <= bindparam("now"))
            .where(or_(RUNS.c.exclusive.is_(False), ~busy))
            .order_by(RUNS.c.priority.desc(), RUNS.c.scheduled_for, RUNS.c.id)
            .limit(bindparam("candidates"))
        )
        if self._dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=RUNS)
        return DirectStatement(stmt)

    async def claim(self, now: datetime, instance_id: str, limit: int) -> Claim:
        """Mark up to `limit` ready queued runs `running` on this instance, best first, and read their
        tasks as stored at the claim, in the same transaction (what the engine needs to start them).

        Ready: `not_before` has passed, and for an exclusive task no other run of it is running.
        Order: priority (high first), then `scheduled_for`.
        """
        if limit <= 0:
            return Claim([], {})

        def work(conn: Connection) -> Claim:
            candidates = self._claimable.all(conn, {"now": now, "candidates": limit * 4})
            idle: set[str] | None = None
            if self._dialect == "postgresql":
                idle = _lock_idle_tasks(conn, {task_id for _, task_id, exclusive in candidates if exclusive})
            chosen: list[str] = []
            exclusive_started: set[str] = set()
            for run_id, task_id, exclusive in candidates:
                if len(chosen) >= limit or (exclusive and task_id in exclusive_started):
                    continue
                if exclusive and idle is not None and task_id not in idle:
                    continue
                chosen.append(run_id)
                if exclusive:
                    exclusive_started.add(task_id)
            if not chosen:
                return Claim([], {})
            runs = _start_runs(conn, chosen, now, instance_id)
            return Claim(runs, _tasks_by_id(conn, {run.task_id for run in runs}))

        return await self.database.write(work)

    async def next_ready_at(self) -> datetime | None:
        """The earliest `not_before` among queued runs."""
        return await self.database.read(_next_ready)

    async def update_run(self, run_id: str, values: dict[str, Any]) -> None:
        def work(conn: Connection) -> None:
            conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))
            if values.get("cancel_requested"):
                self._notify(conn, "cancel", run_id)

        await self.database.write(work)

    async def finish_run(self, run_id: str, values: dict[str, Any], now: datetime) -> bool:
        """Store a run's final state and fold it into its task's counters, in one transaction.

        Returns False if the run had already ended (e.g. cancelled while queued).
        """
        return await self.database.write(lambda conn: _end_run(conn, run_id, values, now))

    async def cancel_queued(self, run_id: str, values: dict[str, Any]) -> bool:
        """End a queued run as cancelled; False if it was no longer queued."""
        stmt = (
            update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == RunStatus.QUEUED.value).values(**values)
        )
        return await self.database.write(lambda conn: bool(conn.execute(stmt).rowcount))

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

    async def cancel_requested(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs someone asked to cancel (from any process)."""
        ids = list(run_ids)
        if not ids:
            return set()
        stmt = select(RUNS.c.id).where(RUNS.c.id.in_(ids), RUNS.c.cancel_requested.is_(True))
        return set(await self._column(stmt))

    async def interrupt_runs(self, instance_ids: Sequence[str], now: datetime, reason: str) -> list[str]:
        """Mark the running runs of dead instances `interrupted`; returns their ids."""
        if not instance_ids:
            return []
        stmt = select(RUNS.c.id).where(
            RUNS.c.status == RunStatus.RUNNING.value, RUNS.c.instance_id.in_(list(instance_ids))
        )
        run_ids: list[str] = await self._column(stmt)
        for run_id in run_ids:
            error = {"step_id": None, "type": "interrupted", "message": reason}
            if await self.finish_run(
                run_id, {"status": RunStatus.INTERRUPTED.value, "finished_at": now, "error": error}, now
            ):
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
            for chunk in _chunks(run_ids, IN_CHUNK):
                conn.execute(delete(LOGS).where(LOGS.c.run_id.in_(chunk)))
                conn.execute(delete(STEPS).where(STEPS.c.run_id.in_(chunk)))
                conn.execute(delete(RUNS).where(RUNS.c.id.in_(chunk)))
            return len(run_ids)

        return await self.database.write(work, slow=True)

    async def queue_counts(self, owner: str | None) -> dict[str, int]:
        stmt = select(RUNS.c.status, func.count()).where(RUNS.c.status.in_(ACTIVE)).group_by(RUNS.c.status)
        if owner is not None:
            stmt = stmt.where(RUNS.c.owner == owner)
        return await self.database.read(
            lambda conn: {status: int(count) for status, count in conn.execute(stmt)}
        )

    async def run_stats(self, owner: str | None, since: datetime) -> dict[str, tuple[int, float | None]]:
        """Count and mean duration of runs finished since `since`, by status."""
        stmt = _ended_since(self._dialect == "sqlite", owner is not None)
        params = {"since": since, "owner": owner}
        return await self.database.read(
            lambda conn: {status: (int(count), avg) for status, count, avg in conn.execute(stmt, params)}
        )

    # -- steps and logs ----------------------------------------------------------------------

    async def record_progress(
        self,
        run_id: str,
        steps: Sequence[StepValues],
        logs: Sequence[LogValues],
        run_values: dict[str, Any] | None,
        end: dict[str, Any] | None = None,
    ) -> None:
        """Save step records, log lines and run fields of one run; durable when this returns.

        With `end` (the run's final fields, `status` and `finished_at` among them) the same write
        also ends the run, as `finish_run` does: its last records and its end are one commit.
        Progress of runs executing at the same time is committed together (group commit): one
        transaction and one statement per kind of row for all of them, instead of one each.
        """
        await self._progress.submit(Progress(run_id, steps, logs, run_values, end))

    async def _write_progress(self, batch: Sequence[Progress]) -> None:
        steps = [step for item in batch for step in item.steps]
        logs = [line for item in batch for line in item.logs]
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        # A run's last fields go in its end: one UPDATE of the row, not two.
        ends = [(item.run_id, (item.run_values or {}) | item.end) for item in batch if item.end is not None]
        for item in batch:
            if item.run_values and item.end is None:
                keys = tuple(sorted(item.run_values))
                updates.setdefault(keys, []).append(_run_params(item.run_id, item.run_values))

        def work(conn: Connection) -> None:
            self._step_upsert.executemany(conn, steps)
            _LOG_INSERT.executemany(conn, logs)
            for keys, rows in updates.items():
                _run_columns_update(keys).executemany(conn, rows)
            for run_id, end in ends:
                _end_run(conn, run_id, end, end["finished_at"])

        await self.database.write(work)

    async def list_steps(self, run_id: str) -> list[StepRow]:
        return await self.database.read(lambda conn: _all(conn, _STEPS_OF_RUN, StepRow, {"run_id": run_id}))

    async def append_logs(self, lines: Sequence[LogValues]) -> None:
        if lines:
            await self.database.write(lambda conn: _LOG_INSERT.executemany(conn, lines))

    async def read_logs(self, run_id: str) -> list[LogRow]:
        return await self._rows(select(LOGS).where(LOGS.c.run_id == run_id).order_by(LOGS.c.id), LogRow)

    # -- idempotency -------------------------------------------------------------------------

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

    # -- instances ---------------------------------------------------------------------------

    async def heartbeat(self, instance: InstanceRow) -> None:
        """Insert or refresh this process's instance row."""
        values = instance.model_dump()
        stmt = self._insert(INSTANCES).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={"last_seen_at": values["last_seen_at"]}
        )
        await self.database.write(lambda conn: conn.execute(stmt))

    async def list_instances(self, seen_since: datetime) -> list[InstanceRow]:
        stmt = (
            select(INSTANCES).where(INSTANCES.c.last_seen_at >= seen_since).order_by(INSTANCES.c.started_at)
        )
        return await self._rows(stmt, InstanceRow)

    async def remove_dead_instances(self, seen_before: datetime) -> list[str]:
        """Delete instance rows not seen since `seen_before`; returns their ids."""

        def work(conn: Connection) -> list[str]:
            stmt = select(INSTANCES.c.id).where(INSTANCES.c.last_seen_at < seen_before)
            dead = [row[0] for row in conn.execute(stmt)]
            if dead:
                conn.execute(delete(INSTANCES).where(INSTANCES.c.id.in_(dead)))
            return dead

        return await self.database.write(work)

    async def orphaned_running_runs(self, live_instances: Sequence[str]) -> list[str]:
        """Instance ids that hold running runs but are not among the live ones."""
        stmt = (
            select(RUNS.c.instance_id)
            .where(RUNS.c.status == RunStatus.RUNNING.value, RUNS.c.instance_id.not_in(list(live_instances)))
            .distinct()
        )
        return [instance for instance in await self._column(stmt) if instance is not None]

    async def remove_instance(self, instance_id: str) -> None:
        await self.database.write(
            lambda conn: conn.execute(delete(INSTANCES).where(INSTANCES.c.id == instance_id))
        )


def _start_at_fire(
    runs: list[dict[str, Any]], active: dict[str, ActiveRuns], now: datetime, slots: Slots
) -> list[dict[str, Any]]:
    """The queued runs of a fire that a claim right after it would start, marked running on the
    instance of `slots` (the rows are changed in place); at most `slots.free`, best first.

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
    chosen.sort(key=lambda row: (-row["priority"], row["scheduled_for"], row["id"]))
    starting = chosen[: slots.free]
    for row in starting:
        row.update(status=RunStatus.RUNNING.value, started_at=now, instance_id=slots.instance_id)
    return starting


def _next_ready(conn: Connection) -> datetime | None:
    """The earliest `not_before` among queued runs."""
    if conn.dialect.name != "sqlite":
        return _aware(conn.execute(_NEXT_READY).scalar())
    found = _NEXT_READY_SQLITE.first(conn, {})
    return _aware(None if found is None else found[0])


def _ready_run_waits(conn: Connection, now: datetime) -> bool:
    """Whether a queued run is ready: a claim may owe it a slot before the runs of a fire."""
    ready = _next_ready(conn)
    return ready is not None and ready <= now


def _stored_run_ids(conn: Connection, ids: list[str]) -> list[str]:
    return [row[0] for row in conn.execute(select(RUNS.c.id).where(RUNS.c.id.in_(ids)))]


def _start_runs(conn: Connection, chosen: list[str], now: datetime, instance_id: str) -> list[RunRow]:
    """Mark these queued runs running on the instance; returns them, in the order of `chosen`."""
    params = {"now": now, "instance": instance_id}
    if conn.dialect.name == "sqlite" and len(chosen) <= ONE_BY_ONE:
        started = (_one(conn, _START_RUN, RunRow, params | {"run_key": run_id}) for run_id in chosen)
        return [run for run in started if run is not None]
    rank = {run_id: index for index, run_id in enumerate(chosen)}
    claimed = conn.execute(_START_RUNS, params | {"ids": chosen})
    return sorted(_models(RunRow, claimed), key=lambda run: rank[run.id])


def _tasks_by_id(conn: Connection, task_ids: set[str]) -> dict[str, TaskRow]:
    """These tasks by id (those that still exist): one direct read each for a few on SQLite (see
    `ONE_BY_ONE`), otherwise one query per chunk of ids."""
    found: dict[str, TaskRow] = {}
    if conn.dialect.name == "sqlite" and len(task_ids) <= ONE_BY_ONE:
        for task_id in task_ids:
            if (task := _one(conn, _TASK_BY_ID, TaskRow, {"id": task_id})) is not None:
                found[task_id] = task
        return found
    for chunk in _chunks(sorted(task_ids), IN_CHUNK):
        for task in _models(TaskRow, conn.execute(_TASKS_BY_ID, {"ids": chunk})):
            found[task.id] = task
    return found


def _active_runs(conn: Connection, task_ids: list[str]) -> dict[str, ActiveRuns]:
    """Queued and running counts of these tasks' runs, in one query per chunk of ids."""
    counts: dict[str, dict[str, int]] = {}
    for chunk in _chunks(task_ids, IN_CHUNK):
        for task_id, status, count in conn.execute(_ACTIVE_COUNTS, {"ids": chunk}):
            counts.setdefault(task_id, {})[status] = count
    return {
        task_id: ActiveRuns(
            queued=by.get(RunStatus.QUEUED.value, 0), running=by.get(RunStatus.RUNNING.value, 0)
        )
        for task_id, by in counts.items()
    }


def _lock_idle_tasks(conn: Connection, task_ids: set[str]) -> set[str]:
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


def _end_run(conn: Connection, run_id: str, values: dict[str, Any], now: datetime) -> bool:
    """Store a run's final fields and fold it into its task's counters; False if it had already ended."""
    ended = _end_active_run(tuple(sorted(values))).first(conn, _run_params(run_id, values))
    if ended is None:
        return False
    task_id, started_at = ended
    status = RunStatus(values["status"])
    if status is not RunStatus.SKIPPED:
        _count_run(conn, task_id, started_at or now, status, now)
    return True


def _run_params(run_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of `_set_run_columns` (and `_end_active_run`) for one run."""
    return {"run_key": run_id, **{f"new_{key}": value for key, value in values.items()}}


@functools.cache
def _set_run_columns(keys: tuple[str, ...]) -> Any:
    """UPDATE a run's columns `keys` (bound as `new_<key>`, the run as `run_key`); built once per set
    of keys (building it costs more than running it)."""
    return (
        update(RUNS)
        .where(RUNS.c.id == bindparam("run_key"))
        .values({key: bindparam(f"new_{key}") for key in keys})
    )


@functools.cache
def _run_columns_update(keys: tuple[str, ...]) -> DirectStatement:
    """`_set_run_columns` for a run's progress writes (see store.direct)."""
    return DirectStatement(_set_run_columns(keys))


@functools.cache
def _end_active_run(keys: tuple[str, ...]) -> DirectStatement:
    """`_set_run_columns` of a run still active, returning what its task's counters need."""
    # The statuses as SQL literals: a list parameter would make the markers per execution.
    active = _set_run_columns(keys).where(
        RUNS.c.status.in_([literal_column(f"'{status}'") for status in ACTIVE])
    )
    return DirectStatement(active.returning(RUNS.c.task_id, RUNS.c.started_at))


@functools.cache
def _add_run_to_counters(failed: bool) -> DirectStatement:
    """The counters UPDATE of `_count_run` (built once: building it cost more than running it)."""
    counters = (
        update(TASKS)
        .where(TASKS.c.id == bindparam("task_key"))
        .values(
            run_count=TASKS.c.run_count + 1,
            success_count=TASKS.c.success_count + bindparam("succeeded"),
            failure_count=TASKS.c.failure_count + int(failed),
            consecutive_failures=TASKS.c.consecutive_failures + 1 if failed else 0,
            last_run_at=bindparam("new_last_run_at"),
            last_run_status=bindparam("new_last_run_status"),
        )
        .returning(TASKS.c.consecutive_failures, TASKS.c.policy, TASKS.c.status)
    )
    return DirectStatement(counters)


def _count_run(
    conn: Connection, task_id: str, last_run_at: datetime, status: RunStatus, now: datetime
) -> None:
    """Add an ended run to its task's counters (in SQL: no read first), pausing the task when
    `pause_after_failures` failures in a row are reached."""
    failed = status.is_failure
    params = {
        "task_key": task_id,
        "succeeded": int(status is RunStatus.SUCCEEDED),
        "new_last_run_at": last_run_at,
        "new_last_run_status": status.value,
    }
    counted = _add_run_to_counters(failed).first(conn, params)
    if counted is None or not failed:
        return
    failures, policy, task_status = counted
    limit = (policy or {}).get("pause_after_failures")
    if limit and failures >= limit and task_status == TaskStatus.ACTIVE.value:
        conn.execute(
            update(TASKS).where(TASKS.c.id == task_id).values(status=TaskStatus.PAUSED.value, updated_at=now)
        )


@functools.cache
def _ended_since(on_sqlite: bool, by_owner: bool) -> Any:
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


def _aware(value: Any) -> datetime | None:
    """Aggregates (min/max) bypass the column type: make their result aware UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

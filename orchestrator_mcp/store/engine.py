"""Databases: where the store's units of work run, and the schema upgrade path.

A unit of work is a plain function of one SQLAlchemy `Connection`, run in one transaction. On
SQLite it runs on stdlib `sqlite3`, on the event loop when the file is free and in a worker thread
when it must wait (see `SqliteDatabase`): a transaction of three statements costs ~0.2 ms, against
~2.1 ms with a thread hop per statement (aiosqlite). On PostgreSQL it runs on asyncpg through
SQLAlchemy's async engine (`run_sync`), so every process keeps one event loop and no thread per
connection.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy import Connection, Engine, event, exc, inspect, select, text, update
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from orchestrator_mcp.errors import Unavailable
from orchestrator_mcp.store.tables import SCHEMA_VERSION, RunRow, SchemaVersionRow, StepRow, TaskRow, TokenRow

IMMEDIATE = "orchestrator_immediate"
"""Execution option: open the transaction with `BEGIN IMMEDIATE` (SQLite) to take the write lock first."""

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 10
MIGRATION_LOCK = 0x6F726368
"""PostgreSQL advisory lock key held while one instance creates or upgrades the schema."""

T = TypeVar("T")
Work = Callable[[Connection], T]
"""A unit of work: statements on one connection, in one transaction; returns what the caller needs."""


class Database(Protocol):
    """Runs units of work. Writes are serialised within the process and open with the write lock
    taken (SQLite `BEGIN IMMEDIATE`), so a write never meets "database is locked" half-way: it
    waits its turn, up to the busy timeout. Neither reads nor writes are cut by cancellation once
    started (a transaction is never left half-run); the caller waits for the end."""

    url: URL
    dialect: str

    async def write(self, work: Work[T], *, slow: bool = False) -> T:
        """Run `work` in a write transaction; committed when this returns, rolled back if it raised.

        `slow`: the work may take long (bulk deletes); it must not hold up the event loop.
        """
        ...

    async def read(self, work: Work[T]) -> T:
        """Run `work` in a read-only transaction (one consistent snapshot)."""
        ...

    async def dispose(self) -> None:
        """Close every pooled connection."""
        ...


class SqliteDatabase:
    """A SQLite file (WAL). Work runs at once on the event loop's own connection, which never waits
    for a lock (busy timeout 0): a transaction here takes ~0.1-0.2 ms, less than handing it to a
    thread and back. When the file is locked (another process is writing, or this one's writer
    thread is busy) or the work is `slow`, it goes to a worker thread instead, which waits for the
    lock up to the busy timeout: one writer thread, `readers` reader threads.

    An in-memory database (`sqlite:///:memory:`, for throwaway use) is one connection, in this
    process only: everything runs here, on it."""

    def __init__(self, url: URL, readers: int) -> None:
        self.url = url
        self.dialect = "sqlite"
        self._in_memory = _in_memory(url)
        if self._in_memory:
            self.engine = self._here = _sqlite_engine(url, 0, 0)
        else:
            self.engine = _sqlite_engine(url, readers + 1, BUSY_TIMEOUT_MS)
            self._here = _sqlite_engine(url, 1, 0)
        self._writer = anyio.CapacityLimiter(1)
        self._readers = anyio.CapacityLimiter(readers)

    async def write(self, work: Work[T], *, slow: bool = False) -> T:
        # Never ahead of a write already waiting for the lock in the writer thread.
        here = self._in_memory or (not slow and not self._writer.borrowed_tokens)
        return await self._run(_write, work, self._writer, here)

    async def read(self, work: Work[T]) -> T:
        return await self._run(_read, work, self._readers, here=True)

    async def _run(
        self,
        transaction: Callable[[Engine, Work[T]], T],
        work: Work[T],
        limiter: anyio.CapacityLimiter,
        here: bool,
    ) -> T:
        if here:
            try:
                done = transaction(self._here, work)
            except exc.OperationalError as error:
                if not _busy(error):
                    raise
            else:
                await anyio.lowlevel.cancel_shielded_checkpoint()
                return done
        with anyio.CancelScope(shield=True):
            done = await anyio.to_thread.run_sync(transaction, self.engine, work, limiter=limiter)
        return done

    async def dispose(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.engine.dispose, limiter=self._writer)
        self._here.dispose()


def _write(engine: Engine, work: Work[T]) -> T:
    with engine.connect() as raw:
        conn = raw.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            return work(conn)


def _read(engine: Engine, work: Work[T]) -> T:
    with engine.connect() as conn:
        return work(conn)


def _busy(error: exc.OperationalError) -> bool:
    """SQLITE_BUSY (or one of its extended codes): another connection holds the lock."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class PostgresDatabase:
    """A PostgreSQL server through asyncpg; units of work run in the event loop (`run_sync`)."""

    def __init__(self, url: URL, pool_size: int) -> None:
        self.url = url
        self.dialect = "postgresql"
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=30,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        )
        self._write_lock = anyio.Lock()

    async def write(self, work: Work[T], *, slow: bool = False) -> T:
        with anyio.CancelScope(shield=True):
            async with self._write_lock, self.engine.begin() as conn:
                done = await conn.run_sync(work)
        return done

    async def read(self, work: Work[T]) -> T:
        with anyio.CancelScope(shield=True):
            async with self.engine.connect() as conn:
                done = await conn.run_sync(work)
        return done

    async def dispose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.engine.dispose()


def open_database(url: str, pool_size: int = 5) -> SqliteDatabase | PostgresDatabase:
    """The database at `url` (`sqlite[+aiosqlite]:///path` or `postgresql+asyncpg://…`), not yet used.

    SQLite gets WAL, a busy timeout, explicit BEGINs and `pool_size` reader threads. PostgreSQL gets
    a pool of `pool_size` connections checked before use (`pool_pre_ping`), so a database restart
    costs the next query a reconnect instead of an error.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return PostgresDatabase(parsed, pool_size)
    database = parsed.database
    if database and not _in_memory(parsed) and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return SqliteDatabase(parsed, pool_size)


def _in_memory(url: URL) -> bool:
    """A SQLite URL naming no file (`sqlite://` or `sqlite:///:memory:`)."""
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL, pool_size: int, busy_timeout_ms: int) -> Engine:
    """A stdlib-sqlite3 engine on this file: WAL, the busy timeout, and explicit BEGINs.

    `pool_size` 0: one connection for good (an in-memory database lives as long as it)."""
    connect_args = {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
    sync_url = url.set(drivername="sqlite+pysqlite")
    if pool_size:
        engine = create_sync_engine(
            sync_url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args
        )
    else:
        engine = create_sync_engine(sync_url, poolclass=StaticPool, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below be the only transaction control (pysqlite's own is broken).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        statement = "BEGIN IMMEDIATE" if connection.get_execution_options().get(IMMEDIATE, False) else "BEGIN"
        # Straight to sqlite3: SQLAlchemy's execution path costs a short transaction ~10 % more.
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.OperationalError as error:  # locked: raised as SQLAlchemy would have raised it
            raise exc.OperationalError(statement, None, error) from error

    return engine


async def migrate(database: Database) -> int:
    """Create or upgrade the schema to `SCHEMA_VERSION`; returns the version found before.

    Raises:
        Unavailable: the database cannot be reached, or was written by a newer version.
    """
    try:
        return await database.write(_migrate)
    except (OSError, TimeoutError, exc.DBAPIError) as error:
        # Connection refused, unknown host or database, bad password: say so in one line at start-up.
        where = database.url.render_as_string(hide_password=True)
        raise Unavailable(f"cannot use the database at {where}: {_reason(error)}") from error


def _migrate(conn: Connection) -> int:
    if conn.dialect.name == "postgresql":
        # Instances starting together: one migrates, the others wait and find it done.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    SQLModel.metadata.create_all(conn)
    found = _read_version(conn)
    if found > SCHEMA_VERSION:
        raise Unavailable(
            f"database schema version {found} is newer than this server's {SCHEMA_VERSION}; "
            "upgrade orchestrator-mcp"
        )
    # A new database is made at the latest version by create_all; an older one is brought forward
    # one version at a time.
    for version in range(found + 1, SCHEMA_VERSION + 1) if found else ():
        UPGRADES[version](conn)
    _write_version(conn, found)
    return found


def _reason(error: BaseException) -> str:
    """The driver's own words (SQLAlchemy's wrapper adds a traceback link and the statement)."""
    cause = getattr(error, "orig", None) or error
    return f"{type(cause).__name__}: {cause}".strip()


def _read_version(conn: Connection) -> int:
    table = SchemaVersionRow.__table__  # type: ignore[attr-defined]
    row = conn.execute(select(table.c.version)).first()
    return 0 if row is None else int(row[0])


def _write_version(conn: Connection, found: int) -> None:
    table = SchemaVersionRow.__table__  # type: ignore[attr-defined]
    if found == 0:
        conn.execute(table.insert().values(id=1, version=SCHEMA_VERSION))
    elif found != SCHEMA_VERSION:
        conn.execute(table.update().values(version=SCHEMA_VERSION))


def _v2_paging_indexes(conn: Connection) -> None:
    """Indexes that end in the page order (time, id), so `list_*` read a page instead of sorting."""
    conn.execute(text("DROP INDEX IF EXISTS ix_runs_task"))
    conn.execute(text("DROP INDEX IF EXISTS ix_runs_owner"))
    for table in (TaskRow.__table__, RunRow.__table__):  # type: ignore[attr-defined]
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def _v3_tokens(conn: Connection) -> None:
    """The bearer tokens of HTTP serving (create_all has usually made the table already)."""
    TokenRow.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v4_queue_indexes(conn: Connection) -> None:
    """The queue's indexes: the claim's in the claim's order (the old one made every claim sort the
    queue) and the earliest `not_before` (it was a scan of every queued run)."""
    conn.execute(text("DROP INDEX IF EXISTS ix_runs_claim"))
    _create_run_indexes(conn, "ix_runs_ready", "ix_runs_queued_not_before")


def _v5_finished_index(conn: Connection) -> None:
    """Runs by end time: `server_status` counted the last 24 h by reading every run (22 ms with
    100,000 runs, on the event loop)."""
    _create_run_indexes(conn, "ix_runs_finished")


def _v6_skip_records_and_fair_claims(conn: Connection) -> None:
    """Skipped runs that stand for several fire times (`skipped_fires`, `last_scheduled_for`); the
    claim's index by principal (fair shares) and a task's runs by status (a fire's overlap check read
    every run of the task).

    A skipped run stored before stands for one fire time, except a misfire record, whose count and
    the moment it was made are read back from its message ("missed N fire times between A and B":
    B is when the misfire was noticed, at or after the last missed time)."""
    runs = RunRow.__table__  # type: ignore[attr-defined]
    present = {column["name"] for column in inspect(conn).get_columns("runs")}
    for name in ("skipped_fires", "last_scheduled_for"):
        if name not in present:
            kind = runs.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {kind}"))
    skipped = runs.c.status == "skipped"
    conn.execute(update(runs).where(skipped).values(skipped_fires=1, last_scheduled_for=runs.c.scheduled_for))
    missed = select(runs.c.id, runs.c.error).where(skipped, runs.c.fire_key.like("missed:%"))
    for run_id, error in conn.execute(missed).all():
        found = _OLD_MISSED.search(str((error or {}).get("message", "")))
        if found:
            until = datetime.fromisoformat(found[2].replace("Z", "+00:00"))
            values = {"skipped_fires": int(found[1]), "last_scheduled_for": until}
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
    conn.execute(text("DROP INDEX IF EXISTS ix_runs_ready"))
    _create_run_indexes(conn, "ix_runs_ready", "ix_runs_task_status")


def _v7_step_content(conn: Connection) -> None:
    """A step's content blocks that are not text (`content`) and their binary data (`content_data`)."""
    steps = StepRow.__table__  # type: ignore[attr-defined]
    present = {column["name"] for column in inspect(conn).get_columns("steps")}
    for name in ("content", "content_data"):
        if name not in present:
            kind = steps.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE steps ADD COLUMN {name} {kind}"))


_OLD_MISSED = re.compile(r"missed (\d+) fire times? between \S+ and (\S+)")


def _create_run_indexes(conn: Connection, *names: str) -> None:
    for index in RunRow.__table__.indexes:  # type: ignore[attr-defined]
        if index.name in names:
            index.create(conn, checkfirst=True)


UPGRADES: dict[int, Callable[[Connection], None]] = {
    2: _v2_paging_indexes,
    3: _v3_tokens,
    4: _v4_queue_indexes,
    5: _v5_finished_index,
    6: _v6_skip_records_and_fair_claims,
    7: _v7_step_content,
}
"""version -> the step that upgrades a database from version-1 to it. Tables added in a later version
are made by create_all; a step here alters what already exists (an index, a column, a backfill)."""

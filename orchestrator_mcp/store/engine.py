"""Database engines: SQLite files tuned for many processes, PostgreSQL pools, and the schema upgrade path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, exc, select, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from orchestrator_mcp.errors import Unavailable
from orchestrator_mcp.store.tables import SCHEMA_VERSION, RunRow, SchemaVersionRow, TaskRow, TokenRow

IMMEDIATE = "orchestrator_immediate"
"""Execution option: open the transaction with `BEGIN IMMEDIATE` (SQLite) to take the write lock first."""

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 10
MIGRATION_LOCK = 0x6F726368
"""PostgreSQL advisory lock key held while one instance creates or upgrades the schema."""


def create_engine(url: str, pool_size: int = 5) -> AsyncEngine:
    """An async engine for `url`.

    SQLite gets WAL, a busy timeout and explicit BEGINs. PostgreSQL gets a pool of `pool_size`
    connections checked before use (`pool_pre_ping`), so a database restart costs the next query a
    reconnect instead of an error.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=30,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        )
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below be the only transaction control (pysqlite's own is broken).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def migrate(engine: AsyncEngine) -> int:
    """Create or upgrade the schema to `SCHEMA_VERSION`; returns the version found before.

    Raises:
        Unavailable: the database cannot be reached, or was written by a newer version.
    """
    try:
        async with engine.connect() as raw:
            conn = await raw.execution_options(**{IMMEDIATE: True})
            async with conn.begin():
                if conn.dialect.name == "postgresql":
                    # Instances starting together: one migrates, the others wait and find it done.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                await conn.run_sync(SQLModel.metadata.create_all)
                found = await _read_version(conn)
                if found > SCHEMA_VERSION:
                    raise Unavailable(
                        f"database schema version {found} is newer than this server's {SCHEMA_VERSION}; "
                        "upgrade orchestrator-mcp"
                    )
                # A new database is made at the latest version by create_all; an older one is
                # brought forward one version at a time.
                for version in range(found + 1, SCHEMA_VERSION + 1) if found else ():
                    await UPGRADES[version](conn)
                await _write_version(conn, found)
    except (OSError, TimeoutError, exc.DBAPIError) as error:
        # Connection refused, unknown host or database, bad password: say so in one line at start-up.
        raise Unavailable(f"cannot use the database at {_safe(engine)}: {_reason(error)}") from error
    return found


def _safe(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _reason(error: BaseException) -> str:
    """The driver's own words (SQLAlchemy's wrapper adds a traceback link and the statement)."""
    cause = getattr(error, "orig", None) or error
    return f"{type(cause).__name__}: {cause}".strip()


async def _read_version(conn: AsyncConnection) -> int:
    table = SchemaVersionRow.__table__  # type: ignore[attr-defined]
    row = (await conn.execute(select(table.c.version))).first()
    return 0 if row is None else int(row[0])


async def _write_version(conn: AsyncConnection, found: int) -> None:
    table = SchemaVersionRow.__table__  # type: ignore[attr-defined]
    if found == 0:
        await conn.execute(table.insert().values(id=1, version=SCHEMA_VERSION))
    elif found != SCHEMA_VERSION:
        await conn.execute(table.update().values(version=SCHEMA_VERSION))


async def _v2_paging_indexes(conn: AsyncConnection) -> None:
    """Indexes that end in the page order (time, id), so `list_*` read a page instead of sorting."""
    await conn.execute(text("DROP INDEX IF EXISTS ix_runs_task"))
    await conn.execute(text("DROP INDEX IF EXISTS ix_runs_owner"))

    def create(sync: Connection) -> None:
        for table in (TaskRow.__table__, RunRow.__table__):  # type: ignore[attr-defined]
            for index in table.indexes:
                index.create(sync, checkfirst=True)

    await conn.run_sync(create)


async def _v3_tokens(conn: AsyncConnection) -> None:
    """The bearer tokens of HTTP serving (create_all has usually made the table already)."""

    def create(sync: Connection) -> None:
        TokenRow.__table__.create(sync, checkfirst=True)  # type: ignore[attr-defined]

    await conn.run_sync(create)


UPGRADES: dict[int, Callable[[AsyncConnection], Awaitable[None]]] = {2: _v2_paging_indexes, 3: _v3_tokens}
"""version -> the step that upgrades a database from version-1 to it. Tables added in a later version
are made by create_all; a step here alters what already exists (an index, a column, a backfill)."""

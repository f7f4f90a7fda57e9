"""What every part of the SQL store shares: its `Database`, its dialect, and the plain reads."""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy import Connection, Table, select

from orchestrator_mcp.store import notices
from orchestrator_mcp.store.engine import Database
from orchestrator_mcp.store.sql import dialect
from orchestrator_mcp.store.sql.rows import ModelT, models


class SqlBase:
    """The `Database` the store's parts run their transactions on (see store.engine)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._dialect = database.dialect

    async def close(self) -> None:
        """Close every pooled connection (not cut by cancellation: it usually runs at shutdown)."""
        await self.database.dispose()

    async def ping(self) -> None:
        await self._scalar(select(1))

    async def listen(self, on_notice: notices.NoticeHandler) -> None:
        """Call `on_notice` with the topic of each notice other instances send, until cancelled.

        On SQLite there are none (processes poll the file): this just waits to be cancelled.
        """
        if self._dialect != dialect.POSTGRESQL:
            await anyio.sleep_forever()
        await notices.listen(notices.listener_dsn(self.database.url), on_notice)

    async def _rows(self, stmt: Any, cls: type[ModelT]) -> list[ModelT]:
        return await self.database.read(lambda conn: list(models(cls, conn.execute(stmt))))

    async def _scalar(self, stmt: Any) -> Any:
        return await self.database.read(lambda conn: conn.execute(stmt).scalar_one_or_none())

    async def _column(self, stmt: Any) -> list[Any]:
        return await self.database.read(lambda conn: [row[0] for row in conn.execute(stmt)])

    def _notify(self, conn: Connection, topic: str, subject: str) -> None:
        """Tell the other instances (PostgreSQL) once this transaction commits; SQLite ones poll."""
        dialect.notify(self._dialect, conn, topic, subject)

    def _insert(self, table: Table) -> Any:
        return dialect.insert_for(self._dialect, table)

"""Idempotency: the result of a tool call made with a key, returned again on a retry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from orchestrator_mcp.store.sql.core import SqlBase
from orchestrator_mcp.store.sql.statements import IDEMPOTENCY
from orchestrator_mcp.store.tables import IdempotencyRow


class IdempotencyMixin(SqlBase):
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

"""Instances: the server processes sharing the database, each known by its heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select

from orchestrator_mcp.store.sql.core import SqlBase
from orchestrator_mcp.store.sql.statements import INSTANCES
from orchestrator_mcp.store.tables import InstanceRow


class InstancesMixin(SqlBase):
    """Heartbeats and the instances they keep listed."""

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

    async def remove_instance(self, instance_id: str) -> None:
        await self.database.write(
            lambda conn: conn.execute(delete(INSTANCES).where(INSTANCES.c.id == instance_id))
        )

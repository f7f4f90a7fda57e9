"""This process as other processes see it, and what it does for the dead ones: heartbeats, and
ending the runs an instance that stopped beating left `running`."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.engine.settings import EngineSettings
from orchestrator_mcp.store.base import InstanceRegistry
from orchestrator_mcp.store.tables import InstanceRow


@dataclass(slots=True)
class Instance:
    """This process, as other processes see it in the instances table."""

    id: str = field(default_factory=lambda: "inst_" + uuid.uuid4().hex[:16])
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


INTERRUPTED = "interrupted: the process running this run stopped before it ended"


class Membership:
    """This instance's row in the instances table, and the reaping of the instances that died."""

    def __init__(
        self,
        store: InstanceRegistry,
        clock: Clock,
        settings: EngineSettings,
        instance: Instance,
        started_at: datetime,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.instance = instance
        self.started_at = started_at

    async def heartbeat(self) -> None:
        """Say this instance is alive (now, by the clock)."""
        now = self.clock.now()
        await self.store.heartbeat(
            InstanceRow(
                id=self.instance.id,
                host=self.instance.host,
                pid=self.instance.pid,
                started_at=self.started_at,
                last_seen_at=now,
            )
        )

    async def heartbeat_and_reap(self) -> None:
        await self.heartbeat()
        await self.reap()

    async def reap(self) -> list[str]:
        """Mark `interrupted` the running runs of instances that died; returns their run ids."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.settings.instance_timeout_seconds)
        await self.store.remove_dead_instances(cutoff)
        live = await self.store.list_instances(cutoff)
        alive = [self.instance.id, *(row.id for row in live if not self._is_dead_local(row))]
        orphans = await self.store.orphaned_running_runs(alive)
        if not orphans:
            return []
        return await self.store.interrupt_runs(orphans, now, INTERRUPTED)

    async def leave(self) -> None:
        """Remove this instance from the instances table (at shutdown)."""
        await self.store.remove_instance(self.instance.id)

    def _is_dead_local(self, row: InstanceRow) -> bool:
        """An instance on this host whose process is gone is dead now, not in 30 s."""
        if row.id == self.instance.id or row.host != self.instance.host:
            return False
        try:
            os.kill(row.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

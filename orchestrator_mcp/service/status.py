"""The server's state as tools, probes and metrics read it: catalog, instances, queue, run statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator_mcp import __version__
from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.run import ACTIVE_RUN_STATUSES, RunStatus, TaskStatus
from orchestrator_mcp.engine.scheduler import Engine
from orchestrator_mcp.errors import NotFound
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.store.base import Store
from orchestrator_mcp.timefmt import rfc3339
from orchestrator_mcp.views import (
    CatalogStateView,
    CatalogToolView,
    CatalogView,
    InstanceView,
    QueueView,
    RunStatsView,
    ServerView,
    StatusView,
)

LOOP_SLACK_SECONDS = 10.0
"""How far behind its poll interval the scheduler loop may be and still count as alive."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Status:
    """What is running, what is waiting, what the catalog offers."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        engine: Engine,
        clock: Clock,
        instance_timeout_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self.clock = clock
        self.instance_timeout = timedelta(seconds=instance_timeout_seconds)

    async def catalog_view(self, who: Principal, server: str | None) -> CatalogView:
        """Every server and tool; waits for the start-up probes so a server still starting is not missed."""
        who.require("catalog:read")
        await self.catalog.settle()
        if server is not None and server not in self.catalog.servers:
            known = ", ".join(sorted(self.catalog.servers))
            raise NotFound(f"server '{server}' not found; the catalog has: {known}")
        servers = [
            ServerView(
                name=c.name,
                transport=c.transport,
                state=c.state,
                available=c.available,
                error=None if c.available else c.error,
            )
            for c in self.catalog.servers.values()
            if server is None or c.name == server
        ]
        tools = [
            CatalogToolView(
                uses=t.uses,
                title=t.title,
                description=t.description,
                input_schema=t.input_schema,
                output_schema=t.output_schema,
                annotations=t.annotations,
                task_support=t.task_support,
            )
            for t in self.catalog.tools(server)
        ]
        return CatalogView(servers=servers, tools=tools)

    async def server_status(self, who: Principal) -> StatusView:
        who.require("tasks:read")
        now = self.clock.now()
        queue = await self.store.queue_counts(who.sees)
        stats = await self.store.run_stats(who.sees, now - timedelta(hours=24))
        finished = sum(count for count, _ in stats.values())
        durations = [(count, avg) for count, avg in stats.values() if avg is not None]
        weight = sum(count for count, _ in durations)
        succeeded = stats.get(RunStatus.SUCCEEDED.value, (0, None))[0]
        executed = finished - stats.get(RunStatus.SKIPPED.value, (0, None))[0]
        instances = await self.store.list_instances(now - self.instance_timeout)
        await self.catalog.settle()
        servers = list(self.catalog.servers.values())
        return StatusView(
            version=__version__,
            uptime_seconds=round((now - self.engine.started_at).total_seconds(), 3),
            instances=[
                InstanceView(id=i.id, host=i.host, started_at=i.started_at, last_seen_at=i.last_seen_at)
                for i in instances
            ],
            queue=QueueView(queued=queue.get("queued", 0), running=queue.get("running", 0)),
            active_tasks=await self.store.count_tasks(who.sees, TaskStatus.ACTIVE.value),
            runs_24h=RunStatsView(
                succeeded=succeeded,
                failed=stats.get(RunStatus.FAILED.value, (0, None))[0],
                timed_out=stats.get(RunStatus.TIMED_OUT.value, (0, None))[0],
                cancelled=stats.get(RunStatus.CANCELLED.value, (0, None))[0],
                success_rate=round(succeeded / executed, 4) if executed else None,
                avg_duration_ms=round(sum(c * a for c, a in durations) / weight, 1) if weight else None,
            ),
            catalog=CatalogStateView(
                servers_available=sum(1 for c in servers if c.available), servers_total=len(servers)
            ),
        )

    # -- probes and metrics (no principal: what they show names none) ------------------------

    async def database_health(self) -> dict[str, Any]:
        """Whether the database answers a query."""
        try:
            await self.store.ping()
        except Exception as error:  # any failure means "not reachable" to a probe
            return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
        return {"ok": True}

    def scheduler_health(self, poll_interval_seconds: float) -> dict[str, Any]:
        """Alive when the engine loop went round recently (it wakes at least every poll interval)."""
        last = self.engine.last_loop_at
        limit = timedelta(seconds=3 * poll_interval_seconds + LOOP_SLACK_SECONDS)
        alive = last is not None and self.clock.now() - last <= limit
        return {
            "ok": alive,
            "last_loop_at": rfc3339(last) if last else None,
            "running_runs": len(self.engine.running),
        }

    def catalog_health(self) -> dict[str, Any]:
        """Informative only: a downstream server being down does not make this server unready."""
        servers = self.catalog.servers.values()
        return {
            "servers_available": sum(1 for server in servers if server.available),
            "servers_total": len(servers),
            "unavailable": self.catalog.unavailable(),
        }

    async def run_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Runs of every principal: (queued and running, every status), read now from the store."""
        active = await self.store.queue_counts(None)
        finished = await self.store.run_stats(None, EPOCH)
        every = {status: count for status, (count, _) in finished.items()} | active
        return {state.value: active.get(state.value, 0) for state in ACTIVE_RUN_STATUSES}, every

"""The engine without an MCP server: store, catalog, runner and engine, as `serve` builds them.

It fires due tasks, claims queued runs and executes them like any serving process sharing the
database (the store's claims keep each fire time to one run), until it is cancelled; then it drains
like `serve`: no new claims, running runs get the shutdown grace, the rest end `interrupted`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import anyio

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.catalog.file import ServerEntry
from orchestrator_mcp.clock import Clock, SystemClock
from orchestrator_mcp.config import Settings, secrets_from
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine
from orchestrator_mcp.server.app import catalog_connections, engine_settings
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tokens import TokenStore


async def run_engine_alone(
    settings: Settings,
    downstream: list[ServerEntry],
    on_ready: Callable[[], None],
    clock: Clock | None = None,
) -> None:
    """Run the engine on the settings' database until cancelled; `on_ready` once it runs.

    Raises:
        Unavailable: the database cannot be reached or used.
    """
    clock = clock or SystemClock()
    store = await SqlStore.open(settings.database_url, settings.db_pool_size)
    try:
        catalog = Catalog(catalog_connections(settings, downstream, clock))
        runner = Runner(
            store,
            catalog,
            clock,
            secrets_from(os.environ),
            RunEvents(),
            grants=TokenStore(store.database),  # the runs of HTTP principals too
        )
        engine = Engine(store, runner, clock, engine_settings(settings))
        async with anyio.create_task_group() as group:
            try:
                await catalog.start(group)
                await group.start(engine.run)
                on_ready()
                await anyio.sleep_forever()
            finally:
                # Runs drain first, while the tool servers they call are still there.
                with anyio.CancelScope(shield=True):
                    await engine.stop()
                catalog.close()
                group.cancel_scope.cancel()
    finally:
        await store.close()

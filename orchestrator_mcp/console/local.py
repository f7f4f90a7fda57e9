"""The service layer for a person at this machine's command line: the `local` principal (every
scope, every principal's records, as over stdio) on the configured database.

The engine it holds never runs: `tasks run` queues a run that a running process (a worker, a
server) executes, and a waiting command reads the run from the store until it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import SystemClock
from orchestrator_mcp.config import Settings
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine
from orchestrator_mcp.principal import LOCAL, Principal
from orchestrator_mcp.server.app import catalog_connections, engine_settings
from orchestrator_mcp.service import Orchestrator, TaskQuotas
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tokens import TokenStore

PERSON: Principal = LOCAL
"""Who a command typed at this machine acts as."""


@asynccontextmanager
async def local_service(settings: Settings) -> AsyncIterator[Orchestrator]:
    """The service on the settings' database, for the duration of one command.

    Raises:
        Unavailable: the database cannot be reached or used.
    """
    store = await SqlStore.open(settings.database_url, settings.db_pool_size)
    try:
        clock = SystemClock()
        events = RunEvents()
        catalog = Catalog(catalog_connections(settings, [], clock))  # never started: nothing is called
        runner = Runner(store, catalog, clock, {}, events)
        engine = Engine(store, runner, clock, engine_settings(settings))  # never run: executes nothing
        tokens = TokenStore(store.database)
        quotas = TaskQuotas(settings.max_tasks_per_principal, settings.max_definition_bytes)
        yield Orchestrator(
            store, catalog, engine, clock, events, settings.instance_timeout_seconds, tokens, quotas
        )
    finally:
        await store.close()

"""The MCP server: one lifespan that builds the store, catalog, engine and service; tools on top."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.mcpserver import MCPServer

from orchestrator_mcp import __version__
from orchestrator_mcp.catalog import Catalog, ServerConnection
from orchestrator_mcp.catalog.file import ServerEntry, load_catalog_file
from orchestrator_mcp.clock import Clock, SystemClock
from orchestrator_mcp.config import Settings
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings
from orchestrator_mcp.principal import LOCAL
from orchestrator_mcp.server.prompts import register_prompts
from orchestrator_mcp.server.resources import register_resources
from orchestrator_mcp.server.tools import register_tools
from orchestrator_mcp.service import Orchestrator
from orchestrator_mcp.store.sql import SqlStore
from tool_catalog import create_core_server, create_http_server

INSTRUCTIONS = """orchestrator-mcp schedules pipelines of tool calls and records every run.
Create tasks with schedule_task (check with validate_pipeline / preview_schedule first), start one now with
run_now, and read results with list_runs / get_run or the run log resource. list_catalog shows the tools a
step can call."""

SECRET_PREFIX = "ORCH_SECRET_"


def secrets_from(environ: Mapping[str, str]) -> dict[str, str]:
    """`ORCH_SECRET_NAME=value` -> {"NAME": value}."""
    return {
        key[len(SECRET_PREFIX) :]: value for key, value in environ.items() if key.startswith(SECRET_PREFIX)
    }


def catalog_connections(settings: Settings, downstream: list[ServerEntry]) -> list[ServerConnection]:
    """The built-in servers, then the downstream servers of the catalog file."""
    allow = [host for host in (settings.http_allow or "").split(",") if host.strip()] or None
    return [
        ServerConnection("core", "builtin", create_core_server()),
        ServerConnection("http", "builtin", create_http_server(allow)),
        *(entry.connection() for entry in downstream),
    ]


def create_server(settings: Settings | None = None, clock: Clock | None = None) -> MCPServer[Orchestrator]:
    """The orchestrator as an MCPServer; nothing runs until the server is started.

    Raises:
        CatalogFileError: the catalog file named by the settings cannot be used.
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    downstream = load_catalog_file(settings.catalog) if settings.catalog is not None else []
    state: dict[str, Orchestrator] = {}

    @asynccontextmanager
    async def lifespan(_: MCPServer[Orchestrator]) -> AsyncIterator[Orchestrator]:
        store = await SqlStore.open(settings.database_url, settings.db_pool_size)
        catalog = Catalog(catalog_connections(settings, downstream))
        events = RunEvents()
        runner = Runner(store, catalog, clock, secrets_from(os.environ), events)
        engine = Engine(
            store,
            runner,
            clock,
            EngineSettings(
                max_concurrent_runs=settings.max_concurrent_runs,
                poll_interval_seconds=settings.poll_interval_seconds,
                heartbeat_seconds=settings.heartbeat_seconds,
                instance_timeout_seconds=settings.instance_timeout_seconds,
                shutdown_grace_seconds=settings.shutdown_grace_seconds,
                run_retention_days=settings.run_retention_days,
            ),
        )
        orchestrator = Orchestrator(store, catalog, engine, clock, events, settings.instance_timeout_seconds)
        try:
            async with anyio.create_task_group() as group:
                try:
                    await catalog.start(group)
                    await group.start(engine.run)
                    state["service"] = orchestrator
                    yield orchestrator
                finally:
                    # Runs drain first, while the tool servers they call are still there; the
                    # sessions end only when closed, even if start-up itself was cancelled.
                    with anyio.CancelScope(shield=True):
                        await engine.stop()
                    catalog.close()
                    group.cancel_scope.cancel()
        finally:
            state.pop("service", None)
            await store.close()

    mcp: MCPServer[Orchestrator] = MCPServer(
        "orchestrator-mcp",
        title="Orchestrator",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
    )
    register_tools(mcp)
    register_resources(mcp, lambda: state["service"])
    register_prompts(mcp)
    register_completions(mcp)
    return mcp


def register_completions(mcp: MCPServer[Orchestrator]) -> None:
    """Complete `task_id` and `run_id` in resource templates and prompts from the caller's own ids."""

    async def complete(
        ctx: ServerRequestContext[Orchestrator], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        orchestrator = ctx.lifespan_context
        prefix = params.argument.value
        owner = None if LOCAL.is_admin else LOCAL.name
        values: list[str] = []
        if params.argument.name == "task_id":
            values = [t.id for t in await orchestrator.store.list_tasks(owner, None, None, 200, None)]
        elif params.argument.name == "run_id":
            values = [r.id for r in await orchestrator.store.list_runs(owner, None, None, None, 200, None)]
        matches = [value for value in values if value.startswith(prefix)]
        return types.CompleteResult(
            completion=types.Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)
        )

    mcp._lowlevel_server.add_request_handler("completion/complete", types.CompleteRequestParams, complete)

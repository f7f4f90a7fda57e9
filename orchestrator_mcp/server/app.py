"""The MCP server: one lifespan that builds the store, catalog, engine and service; tools on top."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerMiddleware
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from orchestrator_mcp import __version__
from orchestrator_mcp.catalog import Catalog, ServerConnection
from orchestrator_mcp.catalog.file import ServerEntry, load_catalog_file
from orchestrator_mcp.clock import Clock, SystemClock
from orchestrator_mcp.config import Settings, secrets_from
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings
from orchestrator_mcp.errors import OrchestratorError
from orchestrator_mcp.ratelimit import RateLimiter
from orchestrator_mcp.server.auth import StoreTokenVerifier
from orchestrator_mcp.server.calls import ToolCalls
from orchestrator_mcp.server.client_logs import ClientLogLevels
from orchestrator_mcp.server.identity import RememberRequest, caller, current_request
from orchestrator_mcp.server.metrics import Metrics
from orchestrator_mcp.server.prompts import register_prompts
from orchestrator_mcp.server.request_limits import RequestLimit, request_limiter
from orchestrator_mcp.server.resources import OrchestratorServer, register_resources
from orchestrator_mcp.server.subscriptions import ResourceUpdates, register_subscriptions
from orchestrator_mcp.server.tools import register_tools
from orchestrator_mcp.service import Orchestrator, TaskQuotas
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tokens import TokenStore
from tool_catalog import create_core_server, create_http_server
from tool_catalog.network import parse_allow

INSTRUCTIONS = """orchestrator-mcp schedules pipelines of tool calls and records every run.
Create tasks with schedule_task (check with validate_pipeline / preview_schedule first), start one now with
run_now, and read results with list_runs / get_run or the run log resource. list_catalog shows the tools a
step can call."""

COMPLETION_CANDIDATES = 200
"""The newest ids of the caller's that argument completion chooses from."""


def catalog_connections(
    settings: Settings, downstream: list[ServerEntry], clock: Clock | None = None
) -> list[ServerConnection]:
    """The built-in servers (`core.sleep` on `clock`), then the downstream servers of the catalog file."""
    allow = parse_allow(settings.http_allow)
    return [
        ServerConnection("core", "builtin", create_core_server(clock)),
        ServerConnection("http", "builtin", create_http_server(allow, settings.http_max_bytes)),
        *(entry.connection() for entry in downstream),
    ]


def engine_settings(settings: Settings) -> EngineSettings:
    """The engine's knobs from the settings (for `serve` and `worker` alike)."""
    return EngineSettings(
        max_concurrent_runs=settings.max_concurrent_runs,
        poll_interval_seconds=settings.poll_interval_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        instance_timeout_seconds=settings.instance_timeout_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        run_retention_days=settings.run_retention_days,
    )


@dataclass
class Served:
    """A server and what the HTTP layer reads beside it: its metrics and, while it runs, its service
    and its token store."""

    mcp: MCPServer[Orchestrator]
    metrics: Metrics
    state: dict[str, Orchestrator] = field(default_factory=dict)
    tokens: dict[str, TokenStore] = field(default_factory=dict)
    requests: RateLimiter | None = None
    """Each principal's budget of requests other than tool calls (None: not counted, as over stdio)."""

    def current(self) -> Orchestrator | None:
        """The running service, or None before start-up and after shutdown."""
        return self.state.get("service")

    def token_store(self) -> TokenStore | None:
        """The running server's tokens, or None before start-up and after shutdown."""
        return self.tokens.get("store")


def create_server(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    on_ready: Callable[[], None] | None = None,
) -> MCPServer[Orchestrator]:
    """The orchestrator as an MCPServer (for stdio and in-process clients); nothing runs until started.
    `on_ready` is called once it has started: store open, catalog connecting, engine running.

    Raises:
        CatalogFileError: the catalog file named by the settings cannot be used.
    """
    return build_server(settings, clock, on_ready=on_ready).mcp


def build_server(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    auth: AuthSettings | None = None,
    rate_limit: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Served:
    """The orchestrator, optionally requiring bearer tokens (`auth`) and limiting tool calls per
    principal per minute (`rate_limit`, and ten times as many other requests).

    Raises:
        CatalogFileError: the catalog file named by the settings cannot be used.
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    downstream = load_catalog_file(settings.catalog) if settings.catalog is not None else []
    metrics = Metrics()
    state: dict[str, Orchestrator] = {}
    tokens: dict[str, TokenStore] = {}
    updates = ResourceUpdates(InMemorySubscriptionBus())

    @asynccontextmanager
    async def lifespan(_: MCPServer[Orchestrator]) -> AsyncIterator[Orchestrator]:
        store = await SqlStore.open(settings.database_url, settings.db_pool_size)
        catalog = Catalog(catalog_connections(settings, downstream, clock), observer=metrics)
        events = RunEvents()
        events.listen(None, updates.on_run_event)
        token_store = TokenStore(store.database)
        runner = Runner(
            store,
            catalog,
            clock,
            secrets_from(os.environ),
            events,
            observer=metrics,
            # Always from the tokens: this process may execute the runs of any process sharing the
            # database, HTTP principals' included, whatever its own transport.
            grants=token_store,
        )
        engine = Engine(
            store,
            runner,
            clock,
            engine_settings(settings),
        )
        quotas = TaskQuotas(settings.max_tasks_per_principal, settings.max_definition_bytes)
        orchestrator = Orchestrator(
            store, catalog, engine, clock, events, settings.instance_timeout_seconds, token_store, quotas
        )
        try:
            async with anyio.create_task_group() as group:
                try:
                    await catalog.start(group)
                    await group.start(updates.run, store.get_run)
                    await group.start(engine.run)
                    tokens["store"] = token_store
                    state["service"] = orchestrator
                    if on_ready is not None:
                        on_ready()
                    yield orchestrator
                finally:
                    state.pop("service", None)
                    tokens.pop("store", None)
                    # Runs drain first, while the tool servers they call are still there; the
                    # sessions end only when closed, even if start-up itself was cancelled.
                    with anyio.CancelScope(shield=True):
                        await engine.stop()
                    catalog.close()
                    group.cancel_scope.cancel()
        finally:
            await store.close()

    calls = ToolCalls(metrics, RateLimiter(rate_limit, clock.monotonic) if rate_limit is not None else None)
    requests = request_limiter(rate_limit, clock.monotonic) if rate_limit is not None else None
    middleware: list[ServerMiddleware[Any]] = [RememberRequest()]
    if requests is not None:
        middleware.append(RequestLimit(requests, calls.is_tool))
    mcp: MCPServer[Orchestrator] = OrchestratorServer(
        "orchestrator-mcp",
        title="Orchestrator",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level=settings.log_level,
        auth=auth,
        token_verifier=StoreTokenVerifier(lambda: tokens.get("store")) if auth is not None else None,
        middleware=middleware,
        subscriptions=updates.bus,
    )
    logs = ClientLogLevels()
    logs.register(mcp)
    register_tools(mcp, calls, logs)
    register_resources(mcp, lambda: state["service"])
    register_prompts(mcp)
    register_completions(mcp)
    register_subscriptions(mcp, updates, caller, settings.max_listen_streams_per_principal)
    return Served(mcp, metrics, state, tokens, requests)


def register_completions(mcp: MCPServer[Orchestrator]) -> None:
    """Complete `task_id` and `run_id` in resource templates and prompts from the caller's own ids."""

    async def complete(
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.Completion:
        # The SDK hands a completion handler no request context: it is the one RememberRequest kept.
        ctx = current_request()
        if ctx is None:
            return types.Completion(values=[])
        service: Orchestrator = ctx.lifespan_context
        prefix = argument.value
        values: list[str] = []
        try:
            who = caller(ctx)
        except OrchestratorError:
            return types.Completion(values=[])
        if argument.name == "task_id":
            values = [t.id for t in await service.tasks.visible(who, COMPLETION_CANDIDATES)]
        elif argument.name == "run_id":
            values = [r.id for r in await service.runs.visible(who, COMPLETION_CANDIDATES)]
        matches = [value for value in values if value.startswith(prefix)]
        return types.Completion(values=matches[:100], total=len(matches), has_more=len(matches) > 100)

    # The SDK leaves `completion()` unannotated, hence the ignore; the handler itself is typed.
    mcp.completion()(complete)  # type: ignore[no-untyped-call]

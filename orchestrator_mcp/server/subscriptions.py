"""Resource-updated notices for a run and its log as the run progresses, in both protocol generations.

2025-11-25 connections subscribe with `resources/subscribe`; 2026-07-28 clients open a
`subscriptions/listen` stream. Either way a notice carries only the URI (reading it checks the owner
again), a principal is told only of its own runs, and one resource gets at most one notice per
`interval` (4 per second by default) with the last change always announced.
"""

from __future__ import annotations

import logging
import math
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup, TaskStatus
from mcp.server import ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ListenHandler, ResourceUpdated, ServerEvent, SubscriptionBus
from mcp.shared.exceptions import MCPError

from orchestrator_mcp.engine.events import RunEvent
from orchestrator_mcp.errors import NotFound
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.server.client_logs import connection_of
from orchestrator_mcp.service import Orchestrator

logger = logging.getLogger(__name__)

MAX_STREAMS = 1024
RUN_URI = re.compile(r"^orchestrator://runs/(?P<run_id>[^/]+)(?:/log)?$")


@dataclass(frozen=True)
class OwnedUpdate(ResourceUpdated):
    """A resource-updated event that remembers whose run changed, so streams can be filtered."""

    owner: str = ""


class OwnerView:
    """The bus as one principal's listen stream sees it: other principals' run updates are hidden."""

    def __init__(self, bus: SubscriptionBus, principal: Principal) -> None:
        self._bus = bus
        self._principal = principal

    async def publish(self, event: ServerEvent) -> None:
        await self._bus.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        def visible(event: ServerEvent) -> None:
            if not isinstance(event, OwnedUpdate) or self._principal.owns(event.owner):
                listener(event)

        return self._bus.subscribe(visible)


class ResourceUpdates:
    """Fans run progress out to subscribed connections and listen streams, at a bounded rate."""

    def __init__(self, bus: SubscriptionBus, interval: float = 0.25) -> None:
        self.bus = bus
        self.interval = interval
        self._connections: dict[str, weakref.WeakSet[Connection]] = {}
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, bool] = {}  # uri -> whether the run has ended
        self._group: TaskGroup | None = None
        self.streams = 0  # open subscriptions/listen streams

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; notices are sent from this task group."""
        async with anyio.create_task_group() as group:
            self._group = group
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._group = None

    def subscribe(self, uri: str, connection: Connection) -> None:
        self._connections.setdefault(uri, weakref.WeakSet()).add(connection)

    def unsubscribe(self, uri: str, connection: Connection) -> None:
        connections = self._connections.get(uri)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._connections[uri]

    async def on_run_event(self, event: RunEvent) -> None:
        """A RunEvents listener: the run and its log have changed."""
        for uri in (f"orchestrator://runs/{event.run_id}", f"orchestrator://runs/{event.run_id}/log"):
            self._touch(uri, event.owner, event.final)

    def _touch(self, uri: str, owner: str, final: bool) -> None:
        if self._group is None:
            return
        if uri in self._pending:
            self._pending[uri] = self._pending[uri] or final
            return
        delay = self._last_sent.get(uri, -math.inf) + self.interval - anyio.current_time()
        self._pending[uri] = final
        self._group.start_soon(self._send_after, uri, owner, max(0.0, delay))

    async def _send_after(self, uri: str, owner: str, delay: float) -> None:
        if delay:
            await anyio.sleep(delay)
        final = self._pending.pop(uri, False)
        self._last_sent[uri] = anyio.current_time()
        await self.bus.publish(OwnedUpdate(uri=uri, owner=owner))
        for connection in list(self._connections.get(uri, ())):
            try:
                await connection.send_resource_updated(uri)
            except Exception:  # a closed connection stops listening; the others still hear
                logger.debug("dropping a subscription of a closed connection to %s", uri)
                self.unsubscribe(uri, connection)
        if final:  # nothing more will change: forget the resource
            self._last_sent.pop(uri, None)
            self._connections.pop(uri, None)


def register_subscriptions(
    mcp: MCPServer[Orchestrator], updates: ResourceUpdates, caller: Callable[[Any], Principal]
) -> None:
    """`resources/subscribe` / `resources/unsubscribe` (2025-11-25) and `subscriptions/listen` (2026-07-28).

    Any URI may be subscribed (notices come only for runs and run logs); a run URI must name one of the
    caller's runs.
    """

    async def subscribe(
        ctx: ServerRequestContext[Orchestrator], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        uri = str(params.uri)
        match = RUN_URI.match(uri)
        if match is not None:
            try:
                await ctx.lifespan_context.owned_run(caller(ctx), match["run_id"])
            except NotFound as error:
                raise MCPError(types.INVALID_PARAMS, error.message) from error
        updates.subscribe(uri, connection_of(ctx.session))
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Orchestrator], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        updates.unsubscribe(str(params.uri), connection_of(ctx.session))
        return types.EmptyResult()

    async def listen(
        ctx: ServerRequestContext[Orchestrator], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        if updates.streams >= MAX_STREAMS:
            raise MCPError(types.INTERNAL_ERROR, f"too many open subscriptions (at most {MAX_STREAMS})")
        updates.streams += 1
        try:
            return await ListenHandler(OwnerView(updates.bus, caller(ctx)))(ctx, params)
        finally:
            updates.streams -= 1

    server = mcp._lowlevel_server  # the SDK's MCPServer has no subscribe handlers of its own
    server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    server.add_request_handler("subscriptions/listen", types.SubscriptionsListenRequestParams, listen)

"""Resource-updated notices for a run and its log as the run progresses, in both protocol generations.

2025-11-25 connections subscribe with `resources/subscribe`; 2026-07-28 clients open a
`subscriptions/listen` stream. Either way a notice carries only the URI (reading it checks the owner
again), a principal is told only of its own runs, and one resource gets at most one notice per
`interval` (4 per second by default) with the last change always announced. Runs executed by this
process announce themselves; a watched run executed by another process sharing the database is seen
by polling the store.
"""

from __future__ import annotations

import logging
import math
import re
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
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

from orchestrator_mcp.domain.run import RunStatus
from orchestrator_mcp.engine.events import RunEvent
from orchestrator_mcp.errors import NotFound, OrchestratorError
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.server import sdk
from orchestrator_mcp.server.client_logs import connection_of
from orchestrator_mcp.server.request_limits import LIMITED
from orchestrator_mcp.service import Orchestrator
from orchestrator_mcp.store.tables import RunRow

logger = logging.getLogger(__name__)

MAX_STREAMS = 1024
"""Open `subscriptions/listen` streams of all principals together, in one process."""
DEFAULT_STREAMS_PER_PRINCIPAL = 64
RUN_URI = re.compile(r"^orchestrator://runs/(?P<run_id>[^/]+)(?:/log)?$")

ReadRun = Callable[[str], Awaitable[RunRow | None]]


def run_id_of(uri: str) -> str | None:
    """The run a run or run-log URI names; None for any other URI."""
    match = RUN_URI.match(uri)
    return None if match is None else match["run_id"]


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

    def __init__(self, bus: SubscriptionBus, interval: float = 0.25, poll_seconds: float = 0.5) -> None:
        self.bus = bus
        self.interval = interval
        self.poll_seconds = poll_seconds
        self._connections: dict[str, weakref.WeakSet[Connection]] = {}
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, bool] = {}  # uri -> whether the run has ended
        self._watched: Counter[str] = Counter()  # run id -> subscriptions naming it
        self._seen: dict[str, tuple[str, int]] = {}  # run id -> (status, steps completed) last polled
        self._group: TaskGroup | None = None
        self.streams = 0  # open subscriptions/listen streams
        self.streams_of: Counter[str] = Counter()  # principal -> its open listen streams

    async def run(
        self, read_run: ReadRun, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled: notices are sent from this task group, watched runs are polled."""
        async with anyio.create_task_group() as group:
            self._group = group
            task_status.started()
            try:
                while True:
                    await anyio.sleep(self.poll_seconds)
                    await self._poll(read_run)
            finally:
                self._group = None

    def subscribe(self, uri: str, connection: Connection) -> None:
        self._connections.setdefault(uri, weakref.WeakSet()).add(connection)
        self.watch([uri])

    def unsubscribe(self, uri: str, connection: Connection) -> None:
        connections = self._connections.get(uri)
        if connections is not None and connection in connections:
            connections.discard(connection)
            self.unwatch([uri])
            if not connections:
                del self._connections[uri]

    def watch(self, uris: Iterable[str]) -> None:
        """Poll the runs these URIs name, in case another process executes them."""
        self._watched.update(run_id for run_id in map(run_id_of, uris) if run_id is not None)

    def unwatch(self, uris: Iterable[str]) -> None:
        self._watched.subtract(run_id for run_id in map(run_id_of, uris) if run_id is not None)
        for run_id in [run_id for run_id, count in self._watched.items() if count <= 0]:
            self._forget(run_id)

    async def _poll(self, read_run: ReadRun) -> None:
        for run_id in list(self._watched):
            run = await read_run(run_id)
            if run is None:
                self._forget(run_id)
                continue
            state, previous = (run.status, run.steps_completed), self._seen.get(run_id)
            final = RunStatus(run.status).is_final
            if state != previous and (previous is not None or final):  # the first look is the baseline
                self.on_run_change(run_id, run.owner, final)
            if final:
                self._forget(run_id)
            else:
                self._seen[run_id] = state

    def _forget(self, run_id: str) -> None:
        self._watched.pop(run_id, None)
        self._seen.pop(run_id, None)

    def on_run_event(self, event: RunEvent) -> None:
        """A RunEvents listener: a run of this process has changed."""
        self.on_run_change(event.run_id, event.owner, event.final)

    def on_run_change(self, run_id: str, owner: str, final: bool) -> None:
        for uri in (f"orchestrator://runs/{run_id}", f"orchestrator://runs/{run_id}/log"):
            if self.streams or uri in self._connections:  # nobody listening: no work on the run's path
                self._touch(uri, owner, final)

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
    mcp: MCPServer[Orchestrator],
    updates: ResourceUpdates,
    caller: Callable[[Any], Principal],
    streams_per_principal: int = DEFAULT_STREAMS_PER_PRINCIPAL,
) -> None:
    """`resources/subscribe` / `resources/unsubscribe` (2025-11-25) and `subscriptions/listen` (2026-07-28).

    Subscribing and listening need `runs:read`. Any URI may be subscribed (notices come only for runs
    and run logs); a run URI must name one of the caller's runs. A principal may hold
    `streams_per_principal` listen streams open at once (`ORCH_MAX_LISTEN_STREAMS_PER_PRINCIPAL`).
    """

    def reader(ctx: ServerRequestContext[Orchestrator]) -> Principal:
        try:
            who = caller(ctx)
            who.require("runs:read")
        except OrchestratorError as error:
            raise MCPError(types.INVALID_REQUEST, error.message) from error
        return who

    async def subscribe(
        ctx: ServerRequestContext[Orchestrator], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        who = reader(ctx)
        uri = str(params.uri)
        run_id = run_id_of(uri)
        if run_id is not None:
            try:
                await ctx.lifespan_context.runs.owned(who, run_id)
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
        who = reader(ctx)
        if updates.streams_of[who.name] >= streams_per_principal:
            raise MCPError(
                LIMITED,
                f"listen limit: principal '{who.name}' may hold {streams_per_principal} open "
                "subscriptions/listen streams (ORCH_MAX_LISTEN_STREAMS_PER_PRINCIPAL); close one first",
            )
        if updates.streams >= MAX_STREAMS:
            raise MCPError(LIMITED, f"too many open subscriptions on this server (at most {MAX_STREAMS})")
        uris = params.notifications.resource_subscriptions or []
        updates.streams += 1
        updates.streams_of[who.name] += 1
        updates.watch(uris)
        try:
            return await ListenHandler(OwnerView(updates.bus, who))(ctx, params)
        finally:
            updates.unwatch(uris)
            updates.streams -= 1
            updates.streams_of[who.name] -= 1
            if updates.streams_of[who.name] <= 0:
                del updates.streams_of[who.name]

    # The SDK's MCPServer has no subscribe handlers of its own, and its listen handler is not per owner.
    sdk.add_request_handler(mcp, "resources/subscribe", types.SubscribeRequestParams, subscribe)
    sdk.add_request_handler(mcp, "resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    sdk.add_request_handler(mcp, "subscriptions/listen", types.SubscriptionsListenRequestParams, listen)

"""One MCP client session to one tool server, owned by a task of its own.

The session is opened when first needed (and probed once at start-up), shared by every run that
calls the server, and reopened after the server process dies, the connection breaks, or an HTTP
server answers that it no longer knows the session (a call that met that answer is sent again, once,
on the new session). A call that cannot reach the server fails as `unavailable`, with what the
server itself said (the end of its stderr, or its HTTP status and body); one cut by its time limit
as `timeout`; a result with `isError` as `tool_error`, so retry policies can tell them apart.

A server's state is `starting` (no session yet, no failure yet), `available` (a live session) or
`unavailable` (the last attempt failed or the session broke; `error` says why).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol, cast, runtime_checkable

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp import Client, MCPError, StdioServerParameters
from mcp.server import Server
from mcp.shared.dispatcher import ProgressFnT
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from orchestrator_mcp.catalog.calls import CURRENT_CALL, CallWatcher, ClientSide, InFlight
from orchestrator_mcp.catalog.failures import (
    CALL_ANSWERS,
    HttpAnswer,
    describe,
    first_error,
    forgotten_session,
)
from orchestrator_mcp.catalog.results import ToolOutput, result_error_text, tool_output
from orchestrator_mcp.catalog.tools import ToolInfo, tool_info
from orchestrator_mcp.catalog.transports import Downstream, HttpDownstream, StdioDownstream, Target
from orchestrator_mcp.domain.retry import FailureKind

logger = logging.getLogger(__name__)

State = Literal["starting", "available", "unavailable"]

SETTLE_SECONDS = 5.0
"""How long a call that broke the session waits for it to close, so the error can quote the
process's last words."""


@runtime_checkable
class DirectCalls(Protocol):
    """A server in this process (a built-in one) whose tools a run may call without a session round trip;
    `call_tool_directly` answers what `tools/call` would."""

    async def call_tool_directly(self, tool_name: str, arguments: dict[str, Any]) -> types.CallToolResult: ...


class ToolCallError(Exception):
    """A tool call failed; `kind` says how, for `retry_on`."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _SessionForgotten(Exception):
    """The HTTP server no longer knows the session; `said` is its answer."""

    def __init__(self, said: str) -> None:
        super().__init__(said)
        self.said = said


async def _within(
    deadline: float, uses: str, time_limit: float, call: Awaitable[types.CallToolResult]
) -> types.CallToolResult:
    """`call`'s result; a `timeout` failure if it is not back by `deadline` (`anyio.current_time`).

    (`fail_after`'s scope without its generator wrapper: this runs once per step.)"""
    with anyio.CancelScope(deadline=deadline) as scope:
        return await call
    assert scope.cancelled_caught  # cut by the deadline; an outer cancellation propagates
    raise ToolCallError(FailureKind.TIMEOUT, f"{uses} did not answer within {time_limit:g}s")


async def _first(*events: anyio.Event) -> None:
    """Return as soon as any of `events` is set."""
    async with anyio.create_task_group() as group:
        for event in events:

            async def wait(event: anyio.Event = event) -> None:
                await event.wait()
                group.cancel_scope.cancel()

            group.start_soon(wait)


def _downstream(
    name: str, target: Server[Any] | StdioServerParameters | str | Callable[[], Target] | Downstream
) -> Downstream | None:
    if isinstance(target, Downstream):
        return target
    if isinstance(target, StdioServerParameters):
        return StdioDownstream(name, target)
    if isinstance(target, str):
        return HttpDownstream(target, {})
    return None


class ServerConnection:
    """A shared client session to one MCP server, opened on demand and reopened after a break."""

    def __init__(
        self,
        name: str,
        transport: str,
        target: Server[Any] | StdioServerParameters | str | Callable[[], Target] | Downstream | None,
        *,
        connect_timeout: float = 30.0,
        retry_delay: float = 1.0,
        roots: Sequence[str] = (),
        unusable: str | None = None,
    ) -> None:
        """`unusable`: why this server cannot be used at all (a catalog entry in error); it is
        listed unavailable with that reason and never connected."""
        self.name = name
        self.transport = transport
        self._downstream = None if target is None else _downstream(name, target)
        self._open: Callable[[], Target]
        if self._downstream is not None:
            self._open = self._downstream.open
        elif target is None:
            self._open = _nothing
        elif isinstance(target, Server):
            server = target
            self._open = lambda: server
        else:  # a factory of transports (what is left once the cases above are taken)
            self._open = cast(Callable[[], Target], target)
        self._direct = target.call_tool_directly if isinstance(target, DirectCalls) else None
        self._unusable = unusable
        self.connect_timeout = connect_timeout
        self.retry_delay = retry_delay
        self.client_side = ClientSide(name, roots)
        self.tools: dict[str, ToolInfo] = {}
        self.error: str | None = unusable
        self._mode = self._first_mode()
        self._client: Client | None = None
        self._loss: str | None = None
        self._wanted = anyio.Event()
        self._ready = anyio.Event()
        self._lost = anyio.Event()
        self._ended = anyio.Event()
        self._relist = anyio.Event()
        self._stop = anyio.Event()
        self.probed = anyio.Event()
        """Set once the first attempt to open the session (the start-up probe) has ended."""

    @property
    def available(self) -> bool:
        return self._client is not None

    @property
    def state(self) -> State:
        if self._client is not None:
            return "available"
        return "starting" if self.error is None else "unavailable"

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the session until `close()`: open it when wanted, hold it, reopen it after a break.

        Reports started once the first attempt (the start-up probe) has ended, either way.
        """
        if self._unusable is not None:
            self.probed.set()
            task_status.started()
            await self._stop.wait()
            return
        self._wanted.set()
        first = True
        while not self._stop.is_set():
            await _first(self._wanted, self._stop)
            if self._stop.is_set():
                break
            self._wanted = anyio.Event()
            opened = await self._session(task_status if first else None)
            first = False
            if not opened:  # do not hammer a server that cannot start
                with anyio.move_on_after(self.retry_delay):
                    await self._stop.wait()
        if first:
            task_status.started()

    def _client_for(self, target: Target) -> Client:
        options = self.client_side.client_options() if self._downstream is not None else {}
        return Client(target, message_handler=self._on_message, mode=self._mode, **options)

    async def _session(self, task_status: TaskStatus[None] | None) -> bool:
        """One session, from opening to its end; whether it opened."""
        opened, self._loss = False, None
        try:
            async with self._client_for(self._open()) as client:
                self.tools = await self._list_tools(client)
                self._remember_protocol(client)
                self._client, self.error, opened = client, None, True
                if self._downstream is not None:
                    self._downstream.opened()
                self._ready.set()
                self.probed.set()
                if task_status is not None:
                    task_status.started()
                    task_status = None
                while not (self._stop.is_set() or self._lost.is_set()):
                    await _first(self._stop, self._lost, self._relist)
                    if self._relist.is_set():
                        self._relist = anyio.Event()
                        self.tools = await self._list_tools(client)
        except Exception as error:  # a server that cannot start must not stop the orchestrator
            cause = describe(error)
            self.error = self._explain(cause if self._loss is None else f"{self._loss}: {cause}")
            if not opened and isinstance(first_error(error), MCPError):
                self._mode = self._first_mode()  # refused at the pinned version: negotiate afresh
            logger.warning("tool server %r is unavailable: %s", self.name, self.error)
        else:
            if self._loss is not None:
                self.error = self._explain(self._loss)
                logger.warning("tool server %r: %s", self.name, self.error)
        finally:
            self._client = None
            if self._loss is not None and opened and not self._stop.is_set():
                self._wanted.set()  # reopen at once: list_catalog should say how it is now
            self._lost = anyio.Event()
            ready, self._ready = self._ready, anyio.Event()
            ended, self._ended = self._ended, anyio.Event()
            ready.set()
            ended.set()
            self.probed.set()
            if task_status is not None:
                task_status.started()
        return opened

    def _first_mode(self) -> str:
        """How the first session is negotiated: `server/discover` first (`auto`), unless the
        transport predates it."""
        return "legacy" if self._downstream is not None and self._downstream.handshake_only else "auto"

    def _remember_protocol(self, client: Client) -> None:
        """A server that answered only the handshake gets no `server/discover` probe next time (an
        older server logs the probe as an error, on every connect)."""
        if self._downstream is not None and client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
            self._mode = "legacy"

    def _explain(self, reason: str) -> str:
        """`reason`, followed by what the server itself said, when it said something."""
        said = self._downstream.diagnosis() if self._downstream is not None else None
        if said is None or said in reason:
            return reason
        return f"{reason}; {said}"

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._relist.set()

    async def _list_tools(self, client: Client) -> dict[str, ToolInfo]:
        tools: dict[str, ToolInfo] = {}
        cursor: str | None = None
        while True:
            listing = await client.list_tools(cursor=cursor)
            for tool in listing.tools:
                info = tool_info(self.name, tool)
                tools[info.uses] = info
            cursor = listing.next_cursor
            if not cursor:
                return tools

    def close(self) -> None:
        self._stop.set()

    async def refresh(self) -> None:
        """Re-read the tool list now (a server may add tools without saying so)."""
        client = self._client
        if client is None:
            return
        try:
            self.tools = await self._list_tools(client)
        except Exception as error:  # the call path will find out and reconnect
            logger.warning("could not re-read the tools of %r: %s", self.name, describe(error))

    async def connect(self) -> Client | None:
        """The live session, opening it if needed (waits up to `connect_timeout`); None if it cannot open."""
        if self._unusable is not None:
            return None
        with anyio.move_on_after(self.connect_timeout):
            if self._lost.is_set():  # a call just found the session broken: wait until it is closed
                await self._ended.wait()
            if self._client is not None:
                return self._client
            ready = self._ready
            self._wanted.set()
            await ready.wait()
        return self._client if not self._lost.is_set() else None

    async def call(
        self, tool: str, arguments: dict[str, Any], time_limit: float, watcher: CallWatcher | None = None
    ) -> Any:
        """The value of calling `tool` (see `call_output`)."""
        return (await self.call_output(tool, arguments, time_limit, watcher)).value

    async def call_output(
        self, tool: str, arguments: dict[str, Any], time_limit: float, watcher: CallWatcher | None = None
    ) -> ToolOutput:
        """Call `tool` and return its output; `watcher` hears the server's progress and log messages.

        Raises:
            ToolCallError: the call failed (`tool_error`), timed out (`timeout`) or the server could
                not be reached (`unavailable`).
        """
        uses = f"{self.name}.{tool}"
        known = self.tools.get(uses)
        if known is not None and known.refusal is not None:
            raise ToolCallError(FailureKind.TOOL_ERROR, known.refusal)
        if self._direct is not None:  # in this process: the session only serves the listing
            deadline = anyio.current_time() + time_limit
            result = await _within(deadline, uses, time_limit, self._direct(tool, arguments))
        else:
            result = await self._call_session(tool, arguments, time_limit, watcher)
        if result.is_error:
            raise ToolCallError(FailureKind.TOOL_ERROR, result_error_text(result))
        return tool_output(result)

    def _unavailable(self, what: str) -> ToolCallError:
        return ToolCallError(FailureKind.UNAVAILABLE, f"server '{self.name}' {what}")

    async def _call_session(
        self, tool: str, arguments: dict[str, Any], time_limit: float, watcher: CallWatcher | None
    ) -> types.CallToolResult:
        """The call on the session; sent again on a new one if the server forgot the session (it
        never ran the call: it refused the request). The time limit starts once a session is open."""
        forgotten: str | None = None
        deadline: float | None = None
        for _attempt in range(2):
            client = await self.connect()
            if deadline is None:
                deadline = anyio.current_time() + time_limit
            if client is None:
                reason = self.error or f"no session within {self.connect_timeout:g}s"
                if forgotten is not None:
                    raise self._unavailable(
                        f"forgot the session ({forgotten}) and could not be reopened: {reason}"
                    )
                raise self._unavailable(f"is unavailable: {reason}")
            try:
                return await self._call_once(client, tool, arguments, deadline, time_limit, watcher)
            except _SessionForgotten as lost:
                forgotten = lost.said
                self._lose(client, f"forgot the session: {lost.said}")
                logger.info("tool server %r forgot the session (%s); reopening it", self.name, lost.said)
        raise self._unavailable(f"forgot the session again right after it was reopened: {forgotten}")

    async def _call_once(
        self,
        client: Client,
        tool: str,
        arguments: dict[str, Any],
        deadline: float,
        time_limit: float,
        watcher: CallWatcher | None,
    ) -> types.CallToolResult:
        uses = f"{self.name}.{tool}"
        call = InFlight(uses, watcher)
        answers: list[HttpAnswer] = []
        progress = _progress_relay(watcher) if watcher is not None else None
        calls = self.client_side.calls
        calls.add(call)
        call_token, answers_token = CURRENT_CALL.set(call), CALL_ANSWERS.set(answers)
        try:
            return await _within(
                deadline, uses, time_limit, client.call_tool(tool, arguments, progress_callback=progress)
            )
        except MCPError as error:
            said = forgotten_session(error, answers)
            if said is not None:
                raise _SessionForgotten(said) from error
            # (A server's own JSON-RPC error may use the same code, -32000, as the SDK's closing.)
            if error.code == types.CONNECTION_CLOSED and not answers:
                raise await self._broke(client, "closed the connection") from error
            failed = next((answer for answer in answers if answer.status >= 500), None)
            if failed is not None:  # the server (or a proxy before it) failed, not the tool
                raise await self._broke(client, f"answered {failed}") from error
            text = str(error) if not answers else f"{error} ({answers[-1]})"
            raise ToolCallError(FailureKind.TOOL_ERROR, f"{uses}: {text}") from error
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as error:
            raise await self._broke(client, f"connection lost: {describe(error)}") from error
        finally:
            CURRENT_CALL.reset(call_token)
            CALL_ANSWERS.reset(answers_token)
            calls.discard(call)

    async def _broke(self, client: Client, what: str) -> ToolCallError:
        """The session broke under a call: have it closed, wait (briefly) until it is, and say why,
        in the server's own words if it had any."""
        ended = self._ended
        self._lose(client, what)
        with anyio.move_on_after(SETTLE_SECONDS):
            await ended.wait()
        if ended.is_set() and self.error is not None:  # the session's end said more
            return self._unavailable(self.error)
        return self._unavailable(self._explain(what))

    def _lose(self, client: Client, reason: str) -> None:
        """`client` broke: have its session closed (and the next call open a new one), unless it
        already was and a newer session is open."""
        if client is self._client:
            self._loss = reason
            self._lost.set()


def _progress_relay(watcher: CallWatcher) -> ProgressFnT:
    async def relay(progress: float, total: float | None, message: str | None) -> None:
        watcher.progress(progress, total, message)

    return relay


def _nothing() -> Target:
    raise RuntimeError("this server has nothing to connect to")

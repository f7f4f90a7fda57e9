"""One MCP client session to one tool server, owned by a task of its own.

The session is opened when first needed (and probed once at start-up), shared by every run that
calls the server, and reopened on the next call after the server process dies or the connection
breaks. A call that cannot reach the server fails as `unavailable`, one cut by its time limit as
`timeout`, and a result with `isError` as `tool_error`, so retry policies can tell them apart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp import Client, MCPError, StdioServerParameters
from mcp.client import Transport
from mcp.server import Server

from orchestrator_mcp.domain.retry import FailureKind

logger = logging.getLogger(__name__)

Target = Server[Any] | StdioServerParameters | str | Transport
"""What `mcp.Client` connects to. A `Transport` can be entered once, so connections take a factory."""


@runtime_checkable
class DirectCalls(Protocol):
    """A server in this process (a built-in one) whose tools a run may call without a session round trip;
    `call_tool_directly` answers what `tools/call` would."""

    async def call_tool_directly(self, tool_name: str, arguments: dict[str, Any]) -> types.CallToolResult: ...


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A callable tool, as `list_catalog` shows it."""

    uses: str
    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolCallError(Exception):
    """A tool call failed; `kind` says how, for `retry_on`."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def result_value(result: types.CallToolResult) -> Any:
    """A tool result's value (SPEC §3): structured content, else a single text block's JSON, else the text."""
    if result.structured_content is not None:
        return result.structured_content
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    if len(texts) == 1:
        try:
            return json.loads(texts[0])
        except ValueError:
            return texts[0]
    return "\n".join(texts)


def result_error_text(result: types.CallToolResult) -> str:
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return "\n".join(texts) or "the tool reported an error without a message"


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return _describe(error.exceptions[0])
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def _within(
    time_limit: float, uses: str, call: Awaitable[types.CallToolResult]
) -> types.CallToolResult:
    """`call`'s result; a `timeout` failure if it takes longer than `time_limit` seconds.

    (`fail_after`'s scope without its generator wrapper: this runs once per step.)"""
    with anyio.CancelScope(deadline=anyio.current_time() + time_limit) as scope:
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


class ServerConnection:
    """A shared client session to one MCP server, opened on demand and reopened after a break."""

    def __init__(
        self,
        name: str,
        transport: str,
        target: Server[Any] | StdioServerParameters | str | Callable[[], Target],
        *,
        connect_timeout: float = 30.0,
        retry_delay: float = 1.0,
    ) -> None:
        self.name = name
        self.transport = transport
        self._open: Callable[[], Target] = (
            (lambda: target) if isinstance(target, Server | StdioServerParameters | str) else target
        )
        self._direct = target.call_tool_directly if isinstance(target, DirectCalls) else None
        self.connect_timeout = connect_timeout
        self.retry_delay = retry_delay
        self.tools: dict[str, ToolInfo] = {}
        self.error: str | None = None
        self._client: Client | None = None
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

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the session until `close()`: open it when wanted, hold it, reopen it after a break.

        Reports started once the first attempt (the start-up probe) has ended, either way.
        """
        self._wanted.set()
        first = True
        while not self._stop.is_set():
            await _first(self._wanted, self._stop)
            if self._stop.is_set():
                break
            await self._session(task_status if first else None)
            first = False
            self._wanted = anyio.Event()
            if self.error is not None:
                with anyio.move_on_after(self.retry_delay):
                    await self._stop.wait()
        if first:
            task_status.started()

    async def _session(self, task_status: TaskStatus[None] | None) -> None:
        try:
            async with Client(self._open(), message_handler=self._on_message) as client:
                self.tools = await self._list_tools(client)
                self._client, self.error = client, None
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
            self.error = _describe(error)
            logger.warning("tool server %r is unavailable: %s", self.name, self.error)
        finally:
            self._client = None
            self._lost = anyio.Event()
            ready, self._ready = self._ready, anyio.Event()
            ended, self._ended = self._ended, anyio.Event()
            ready.set()
            ended.set()
            self.probed.set()
            if task_status is not None:
                task_status.started()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._relist.set()

    async def _list_tools(self, client: Client) -> dict[str, ToolInfo]:
        tools: dict[str, ToolInfo] = {}
        cursor: str | None = None
        while True:
            listing = await client.list_tools(cursor=cursor)
            for tool in listing.tools:
                uses = f"{self.name}.{tool.name}"
                tools[uses] = ToolInfo(
                    uses, self.name, tool.name, tool.description or "", dict(tool.input_schema)
                )
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
            logger.warning("could not re-read the tools of %r: %s", self.name, _describe(error))

    async def connect(self) -> Client | None:
        """The live session, opening it if needed (waits up to `connect_timeout`); None if it cannot open."""
        with anyio.move_on_after(self.connect_timeout):
            if self._lost.is_set():  # a call just found the session broken: wait until it is closed
                await self._ended.wait()
            if self._client is not None:
                return self._client
            ready = self._ready
            self._wanted.set()
            await ready.wait()
        return self._client if not self._lost.is_set() else None

    async def call(self, tool: str, arguments: dict[str, Any], time_limit: float) -> Any:
        """Call `tool` and return its value.

        Raises:
            ToolCallError: the call failed (`tool_error`), timed out (`timeout`) or the server could
                not be reached (`unavailable`).
        """
        if self._direct is not None:  # in this process: the session only serves the listing
            result = await _within(time_limit, f"{self.name}.{tool}", self._direct(tool, arguments))
        else:
            result = await self._call_session(tool, arguments, time_limit)
        if result.is_error:
            raise ToolCallError(FailureKind.TOOL_ERROR, result_error_text(result))
        return result_value(result)

    async def _call_session(
        self, tool: str, arguments: dict[str, Any], time_limit: float
    ) -> types.CallToolResult:
        client = await self.connect()
        if client is None:
            reason = self.error or f"no session within {self.connect_timeout:g}s"
            raise ToolCallError(FailureKind.UNAVAILABLE, f"server '{self.name}' is unavailable: {reason}")
        try:
            return await _within(time_limit, f"{self.name}.{tool}", client.call_tool(tool, arguments))
        except MCPError as error:
            if error.code == types.CONNECTION_CLOSED:
                self._lose(client)
                raise ToolCallError(
                    FailureKind.UNAVAILABLE, f"server '{self.name}' closed the connection"
                ) from error
            raise ToolCallError(FailureKind.TOOL_ERROR, f"{self.name}.{tool}: {error}") from error
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as error:
            self._lose(client)
            raise ToolCallError(
                FailureKind.UNAVAILABLE, f"server '{self.name}' connection lost: {_describe(error)}"
            ) from error

    def _lose(self, client: Client) -> None:
        """`client` broke: have its session closed (and the next call open a new one), unless it
        already was and a newer session is open."""
        if client is self._client:
            self._lost.set()

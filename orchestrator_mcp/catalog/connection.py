"""One MCP client session to one tool server, owned by a task of its own.

The session is opened by `run()` (in the catalog's task group) and used by any number of runs at
once; a call that cannot reach the server fails as `unavailable`, one cut by its time limit as
`timeout`, and a result with `isError` as `tool_error`, so retry policies can tell them apart.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp import Client, MCPError, StdioServerParameters
from mcp.server import Server

from orchestrator_mcp.domain.retry import FailureKind

logger = logging.getLogger(__name__)

Target = Server[Any] | StdioServerParameters | str


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


class ServerConnection:
    """A lazily opened, shared client session to one MCP server."""

    def __init__(self, name: str, transport: str, target: Target, connect_timeout: float = 30.0) -> None:
        self.name = name
        self.transport = transport
        self.target = target
        self.connect_timeout = connect_timeout
        self.tools: dict[str, ToolInfo] = {}
        self.error: str | None = None
        self._client: Client | None = None
        self._ready = anyio.Event()
        self._stop = anyio.Event()

    @property
    def available(self) -> bool:
        return self._client is not None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the session, list the tools, and hold the session until `close()`."""
        started = False
        try:
            async with Client(self.target) as client:
                self.tools = await self._list_tools(client)
                self._client, self.error = client, None
                self._ready.set()
                task_status.started()
                started = True
                await self._stop.wait()
        except Exception as error:  # a server that cannot start must not stop the orchestrator
            self.error = f"{type(error).__name__}: {error}"
            logger.warning("tool server %r is unavailable: %s", self.name, self.error)
        finally:
            self._client = None
            self._ready.set()
            if not started:
                task_status.started()

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

    async def call(self, tool: str, arguments: dict[str, Any], time_limit: float) -> Any:
        """Call `tool` and return its value.

        Raises:
            ToolCallError: the call failed (`tool_error`), timed out (`timeout`) or the server could
                not be reached (`unavailable`).
        """
        with anyio.move_on_after(self.connect_timeout):
            await self._ready.wait()
        client = self._client
        if client is None:
            raise ToolCallError(FailureKind.UNAVAILABLE, f"server '{self.name}' is unavailable: {self.error}")
        try:
            with anyio.fail_after(time_limit):
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            raise ToolCallError(
                FailureKind.TIMEOUT, f"{self.name}.{tool} did not answer within {time_limit:g}s"
            ) from None
        except MCPError as error:
            raise ToolCallError(FailureKind.TOOL_ERROR, f"{self.name}.{tool}: {error}") from error
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as error:
            raise ToolCallError(
                FailureKind.UNAVAILABLE, f"server '{self.name}' connection lost: {error!r}"
            ) from error
        if result.is_error:
            raise ToolCallError(FailureKind.TOOL_ERROR, result_error_text(result))
        return result_value(result)

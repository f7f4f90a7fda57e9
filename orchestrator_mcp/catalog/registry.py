"""The catalog: tool servers by name, their tools by `<server>.<tool>` address."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from orchestrator_mcp.catalog.calls import CallWatcher
from orchestrator_mcp.catalog.connection import ServerConnection, ToolCallError
from orchestrator_mcp.catalog.results import ToolOutput
from orchestrator_mcp.catalog.tools import ToolInfo
from orchestrator_mcp.domain.retry import FailureKind


class CallObserver(Protocol):
    """Told how each tool call went (for metrics); `outcome` is "ok" or the failure kind."""

    def downstream_called(self, server: str, outcome: str, seconds: float) -> None: ...


class Catalog:
    """Routes tool calls to their server's session and lists what can be called."""

    def __init__(self, connections: Iterable[ServerConnection], observer: CallObserver | None = None) -> None:
        self.observer = observer
        self.servers: dict[str, ServerConnection] = {}
        for connection in connections:
            if connection.name in self.servers:
                raise ValueError(f"tool server '{connection.name}' is declared twice")
            self.servers[connection.name] = connection

    async def start(self, task_group: TaskGroup) -> None:
        """Run every session in `task_group`.

        Built-in servers are up when this returns; downstream servers are probed in the background,
        so a slow or broken one never delays start-up. Sessions are deaf to the cancellation of
        `task_group`: they end with `close()`, after the runs that use them have drained.

        Waiting for the built-in servers stays cancellable: a signal during start-up cancels this
        wait, and the caller's `close()` then ends the sessions. (Waiting through
        `task_group.start` would not be: cancelled, it waits for the session to end, which only
        `close()` after it can bring about.)
        """
        for connection in self.servers.values():
            task_group.start_soon(_shielded, connection)
        for connection in self.servers.values():
            if connection.transport == "builtin":
                await connection.probed.wait()

    async def settle(self, limit_seconds: float = 10.0) -> None:
        """Wait (at most `limit_seconds`) until every server's start-up probe has ended."""
        with anyio.move_on_after(limit_seconds):
            for connection in self.servers.values():
                await connection.probed.wait()

    async def prepare(self, uses: Iterable[str]) -> None:
        """Load what is known of these tools: open the sessions of the servers they name (at once),
        then re-read the list of a reachable server that lacks one of them (it may be new).

        A no-op when every named tool is already known, as on a run's hot path.
        """
        missing = [address for address in uses if self.tool(address) is None]
        named = {self.servers[name] for name in map(server_of, missing) if name in self.servers}
        closed = [connection for connection in named if not connection.available]
        if closed:
            async with anyio.create_task_group() as group:
                for connection in closed:
                    group.start_soon(connection.connect)
        for connection in named:
            lacking = [address for address in missing if server_of(address) == connection.name]
            if connection.available and any(self.tool(address) is None for address in lacking):
                await connection.refresh()

    def close(self) -> None:
        for connection in self.servers.values():
            connection.close()

    def tools(self, server: str | None = None) -> list[ToolInfo]:
        return [
            tool
            for connection in self.servers.values()
            if server is None or connection.name == server
            for tool in connection.tools.values()
        ]

    def schemas(self) -> Mapping[str, dict[str, Any]]:
        """Every callable address with its input schema (what pipeline validation checks against)."""
        return {tool.uses: tool.input_schema for tool in self.tools()}

    def unavailable(self) -> dict[str, str]:
        """The servers that cannot be reached now, with the reason."""
        return {
            name: connection.error or "still starting"
            for name, connection in self.servers.items()
            if not connection.available
        }

    def refusals(self) -> dict[str, str]:
        """The listed tools a step cannot call (they require MCP task augmentation), with the reason."""
        return {tool.uses: tool.refusal for tool in self.tools() if tool.refusal is not None}

    def tool(self, uses: str) -> ToolInfo | None:
        connection = self.servers.get(server_of(uses))
        return None if connection is None else connection.tools.get(uses)

    async def call(
        self, uses: str, arguments: dict[str, Any], time_limit: float, watcher: CallWatcher | None = None
    ) -> Any:
        """The value of calling the tool at `uses` (see `call_output`)."""
        return (await self.call_output(uses, arguments, time_limit, watcher)).value

    async def call_output(
        self, uses: str, arguments: dict[str, Any], time_limit: float, watcher: CallWatcher | None = None
    ) -> ToolOutput:
        """Call the tool at `uses`: its value and its blocks that are not text; `watcher` hears what
        its server says about the call while it runs.

        Raises:
            ToolCallError: see `ServerConnection.call`; an unknown server is `unavailable`.
        """
        server, _, tool = uses.partition(".")
        connection = self.servers.get(server)
        if connection is None:
            raise ToolCallError(FailureKind.UNAVAILABLE, f"no tool server named '{server}' in the catalog")
        if self.observer is None:
            return await connection.call_output(tool, arguments, time_limit, watcher)
        started, outcome = time.perf_counter(), "ok"
        try:
            return await connection.call_output(tool, arguments, time_limit, watcher)
        except ToolCallError as error:
            outcome = str(error.kind.value)
            raise
        except Exception:
            outcome = "error"
            raise
        except BaseException:  # cancelled (a run cancelled or timed out around the call)
            outcome = "cancelled"
            raise
        finally:
            self.observer.downstream_called(server, outcome, time.perf_counter() - started)


def server_of(uses: str) -> str:
    """The server part of a `<server>.<tool>` address."""
    return uses.split(".", 1)[0]


async def _shielded(connection: ServerConnection) -> None:
    with anyio.CancelScope(shield=True):
        await connection.run()

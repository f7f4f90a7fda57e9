"""The catalog: tool servers by name, their tools by `<server>.<tool>` address."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from orchestrator_mcp.catalog.connection import ServerConnection, ToolCallError, ToolInfo
from orchestrator_mcp.domain.retry import FailureKind


class Catalog:
    """Routes tool calls to their server's session and lists what can be called."""

    def __init__(self, connections: Iterable[ServerConnection]) -> None:
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
        """
        for connection in self.servers.values():
            if connection.transport == "builtin":
                await task_group.start(_shielded, connection)
            else:
                task_group.start_soon(_shielded, connection)

    async def settle(self, limit_seconds: float = 10.0) -> None:
        """Wait (at most `limit_seconds`) until every server's start-up probe has ended."""
        with anyio.move_on_after(limit_seconds):
            for connection in self.servers.values():
                await connection.probed.wait()

    async def refresh_for(self, uses: Iterable[str]) -> None:
        """Re-read the tool lists of reachable servers that lack one of these tools (it may be new)."""
        stale = {
            address.split(".", 1)[0]
            for address in uses
            if self.tool(address) is None and address.split(".", 1)[0] in self.servers
        }
        for name in stale:
            await self.servers[name].refresh()

    async def prepare(self, servers: Iterable[str]) -> None:
        """Make sure the named servers' tool lists are loaded (opening their sessions if needed)."""
        wanted = [self.servers[name] for name in set(servers) if name in self.servers]
        async with anyio.create_task_group() as group:
            for connection in wanted:
                if not connection.available:
                    group.start_soon(connection.connect)

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
            name: connection.error or "not connected"
            for name, connection in self.servers.items()
            if not connection.available
        }

    def tool(self, uses: str) -> ToolInfo | None:
        connection = self.servers.get(uses.split(".", 1)[0])
        return None if connection is None else connection.tools.get(uses)

    async def call(self, uses: str, arguments: dict[str, Any], time_limit: float) -> Any:
        """Call the tool at `uses`.

        Raises:
            ToolCallError: see `ServerConnection.call`; an unknown server is `unavailable`.
        """
        server, _, tool = uses.partition(".")
        connection = self.servers.get(server)
        if connection is None:
            raise ToolCallError(FailureKind.UNAVAILABLE, f"no tool server named '{server}' in the catalog")
        return await connection.call(tool, arguments, time_limit)


async def _shielded(
    connection: ServerConnection, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    with anyio.CancelScope(shield=True):
        await connection.run(task_status=task_status)

"""The catalog: tool servers by name, their tools by `<server>.<tool>` address."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from anyio.abc import TaskGroup

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
        """Open every session in `task_group`; returns once each is up or has failed."""
        for connection in self.servers.values():
            await task_group.start(connection.run)

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

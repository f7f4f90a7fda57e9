"""A downstream MCP tool server for the step-overhead bench, run as its own process over stdio.

One tool, `noop`, that returns {} at once: what a call costs here is the MCP round trip itself.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bench")


@mcp.tool()
def noop() -> dict[str, Any]:
    """Do nothing; returns {}."""
    return {}


if __name__ == "__main__":
    mcp.run("stdio")

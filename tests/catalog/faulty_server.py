"""A downstream MCP server that misbehaves on request: crashes, hangs, fails. Run as a real process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

mcp = MCPServer("faulty")
MARKER = Path(os.environ.get("FAULTY_MARKER", "/nonexistent"))


@mcp.tool()
def add(a: int, b: int) -> int:
    """a + b."""
    return a + b


@mcp.tool()
def pid() -> int:
    """This process's id."""
    return os.getpid()


@mcp.tool()
def fail(message: str) -> str:
    """Always fails with `message`."""
    raise ToolError(message)


@mcp.tool()
async def hang(seconds: float = 3600) -> str:
    """Sleeps; writes 'hanging' to the marker file once the call is in, 'cancelled' if it is cancelled."""
    try:
        await anyio.Path(MARKER).write_text("hanging")
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await anyio.Path(MARKER).write_text("cancelled")
        raise
    return "woke"


@mcp.tool()
def grow(name: str) -> str:
    """Add a tool named `name` (returning 'grown') to this server, as servers that load plugins do."""

    def grown() -> str:
        return "grown"

    mcp.add_tool(grown, name=name, description="Added at run time.")
    return name


@mcp.tool()
async def crash() -> str:
    """Exits the process in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        mcp.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        mcp.run("stdio")

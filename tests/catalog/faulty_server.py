"""A downstream MCP server that misbehaves on request (crashes, hangs, fails) and uses what a
client may offer (progress, log messages, elicitation, sampling, roots). Run as a real process:

    python faulty_server.py                      stdio
    python faulty_server.py --http PORT          streamable HTTP at /mcp
    python faulty_server.py --http PORT --old    ... as a server of the handshake era only (the
                                                 `server/discover` probe refused as a 1.x SDK does,
                                                 an unknown session answered 400 "No valid session
                                                 ID provided" as the TypeScript SDK does)
    python faulty_server.py --http PORT --old-404  ... the same, an unknown session answered 404
                                                 "Session not found" (the Python SDK's words)
    python faulty_server.py --sse PORT           the legacy HTTP+SSE transport at /sse
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel


class FaultyServer(MCPServer):
    """Lists the tool `tasked` as one that must be called as an MCP task."""

    async def list_tools(self) -> list[types.Tool]:
        tools = await super().list_tools()
        return [
            tool.model_copy(update={"execution": types.ToolExecution(task_support="required")})
            if tool.name == "tasked"
            else tool
            for tool in tools
        ]


mcp = FaultyServer("faulty")
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
    """Exits the process in the middle of the call, saying why on stderr."""
    sys.stderr.write("faulty: crashing on request\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(3)


@mcp.tool(
    title="Erase a note",
    annotations=types.ToolAnnotations(destructive_hint=True, idempotent_hint=True),
)
def erase(name: str) -> dict[str, str]:
    """Pretends to erase the note `name`."""
    return {"erased": name}


@mcp.tool(structured_output=False)
def picture() -> list[types.ContentBlock]:
    """A caption, a tiny image, a resource link, an embedded text resource and an embedded blob."""
    return [
        types.TextContent(type="text", text="a red dot"),
        types.ImageContent(type="image", data="iVBORw==", mime_type="image/png"),
        types.ResourceLink(type="resource_link", name="notes", uri="file:///tmp/notes.txt"),
        types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(uri="memo://1", mime_type="text/plain", text="remember"),
        ),
        types.EmbeddedResource(
            type="resource",
            resource=types.BlobResourceContents(uri="memo://2", mime_type="application/pdf", blob="JVBERg=="),
        ),
    ]


@mcp.tool()
def tasked() -> str:
    """Declared as requiring MCP task augmentation (see FaultyServer)."""
    return "ran without a task"


@mcp.tool()
async def chatty(steps: int, ctx: Context) -> str:
    """Reports progress `steps` times, then logs at info and warning level."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"part {step} of {steps}")
    await ctx.info("chatty: all parts done")
    await ctx.warning("chatty: the last part was slow")
    return "chatted"


class Name(BaseModel):
    name: str


@mcp.tool()
async def ask(ctx: Context) -> str:
    """Asks the client for a name (elicitation); returns what the client answered."""
    answer = await ctx.elicit("What is your name?", Name)
    return answer.action


@mcp.tool()
async def sample(ctx: Context) -> str:
    """Asks the client for a model completion (sampling); returns the error if it declines."""
    try:
        await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text="Hi"))],
            max_tokens=10,
            related_request_id=ctx.request_id,
        )
    except Exception as error:
        return f"declined: {error}"
    return "sampled"


@mcp.tool()
async def roots(ctx: Context) -> list[str]:
    """The roots the client declares."""
    listed = await ctx.session.list_roots()
    return [str(root.uri) for root in listed.roots]


refused_probes: list[str] = []


@mcp.tool()
def probes() -> int:
    """How many requests at a newer protocol version (`server/discover` probes) this process refused."""
    return len(refused_probes)


def handshake_era_only(app: Any, own_words: bool) -> Any:
    """`app` as an HTTP server of the handshake era answers: a request at a newer protocol version
    (the `server/discover` probe) is refused with 400 and a JSON-RPC error; so is a request naming a
    session it does not know, in the TypeScript SDK's words, unless `own_words` (then the SDK's own
    answer, 404 "Session not found", goes out)."""
    known: set[str] = set()

    async def refuse(send: Any, message: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}})
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        version, session = headers.get("mcp-protocol-version"), headers.get("mcp-session-id")
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            refused_probes.append(version)
            return await refuse(send, f"Bad Request: Unsupported protocol version: {version}")
        if session is not None and session not in known and not own_words:
            return await refuse(send, "Bad Request: No valid session ID provided")

        async def noting(message: Any) -> None:
            if message["type"] == "http.response.start":
                for key, value in message.get("headers", []):
                    if key.decode().lower() == "mcp-session-id":
                        known.add(value.decode())
            await send(message)

        await app(scope, receive, noting)

    return wrapped


def serve(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        app = mcp.streamable_http_app()
        old = "--old" in sys.argv or "--old-404" in sys.argv
        serve(handshake_era_only(app, "--old-404" in sys.argv) if old else app, int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--sse":
        serve(mcp.sse_app(), int(sys.argv[2]))
    else:
        mcp.run("stdio")

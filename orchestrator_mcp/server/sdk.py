"""The one place that reaches into the MCP SDK's private attributes.

`MCPServer` (mcp 2.3) hides the low-level `Server` it wraps, the streamable HTTP manager keeps its
sessions to itself and `ServerSession` keeps its connection private. Where the server needs one of
those, it goes through a function here, each saying which public API is missing. Everything else
uses the SDK's public surface only: `.ci/sdk_privates.py` (run by the tests) fails on a private SDK
access anywhere else, and `tests/server/test_sdk_seam.py` fails when an installed SDK no longer has
what these functions use. A new SDK minor version is allowed by the `mcp` pin only once that test
passed on it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.connection import Connection
from mcp.server.lowlevel.server import RequestHandler, Server
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel

if TYPE_CHECKING:
    from mcp.shared._stream_protocols import ReadStream, WriteStream
    from mcp.shared.message import SessionMessage

LifespanT = TypeVar("LifespanT")
ParamsT = TypeVar("ParamsT", bound=BaseModel)


def lowlevel_server(mcp: MCPServer[LifespanT]) -> Server[LifespanT]:
    """The low-level `Server` behind `mcp` (`MCPServer._lowlevel_server`).

    Missing public API: `MCPServer` has no accessor for it. Its `session_manager.app` is the same
    object, but only after `streamable_http_app()` built the manager, which stdio never does.
    """
    server: Server[LifespanT] = mcp._lowlevel_server
    return server


def add_request_handler(
    mcp: MCPServer[LifespanT],
    method: str,
    params_type: type[ParamsT],
    handler: RequestHandler[LifespanT, ParamsT],
) -> None:
    """Serve `method` with `handler`, replacing the SDK's handler for it if it has one.

    Missing public API: `MCPServer` registers only its own spec handlers and extension methods,
    which may neither name a spec method nor replace a handler. The server needs four it does not
    offer: `logging/setLevel` (its constructor argument warns, 2026-07-28 dropped it; the SDK's
    extension docs point to the low-level `Server.add_request_handler` for exactly this),
    `resources/list` (the SDK lists only static resources, ours depend on the caller),
    `resources/subscribe` / `resources/unsubscribe` (no handlers of its own) and
    `subscriptions/listen` (its handler sends every event to every listener, ours only a
    principal's own runs).
    """
    lowlevel_server(mcp).add_request_handler(method, params_type, handler)


async def run_lowlevel(
    mcp: MCPServer[Any],
    read_stream: ReadStream[SessionMessage | Exception],
    write_stream: WriteStream[SessionMessage],
) -> None:
    """Serve one connection on the given streams until the read side closes, as
    `MCPServer.run_stdio_async` does on the process's own stdin and stdout.

    Missing public API: `MCPServer` runs only on streams it opens itself; stdio needs to hand it
    streams over a stdin it can cancel (see `server/stdio.py`).
    """
    server = lowlevel_server(mcp)
    await server.run(read_stream, write_stream, server.create_initialization_options())


def open_transports(manager: StreamableHTTPSessionManager) -> list[StreamableHTTPServerTransport]:
    """The transports of the sessions the manager holds open now
    (`StreamableHTTPSessionManager._server_instances`).

    Missing public API: the manager neither lists its sessions nor ends them all; a shutdown
    terminates each so that its long-lived GET stream ends at once.
    """
    instances: dict[str, StreamableHTTPServerTransport] = manager._server_instances
    return list(instances.values())


def open_session_ids(manager: StreamableHTTPSessionManager) -> Collection[str]:
    """The ids of the sessions the manager holds open now, as a live view
    (`StreamableHTTPSessionManager._server_instances`).

    Missing public API: as for `open_transports`. The per-principal session quota counts a
    principal's sessions as those of its ids still in here: the manager forgets a session however it
    ends (DELETE, idle timeout, closed transport, crash), and nothing else tells of it.
    """
    instances: dict[str, StreamableHTTPServerTransport] = manager._server_instances
    return instances.keys()


def session_connection(session: ServerSession) -> Connection:
    """The client connection behind a request's session (`ServerSession._connection`).

    Missing public API: the SDK builds a new `ServerSession` per request and exposes the
    connection only on `mcp.server.context.Context`, which the runner does not construct.
    Per-client state (log level, subscriptions) has to be keyed by what lasts as long as the
    client.
    """
    connection: Connection = session._connection
    return connection

"""The installed MCP SDK still has every private attribute `orchestrator_mcp/server/sdk.py` uses, in the
shape it uses it, and each seam function works on it.

When this fails after an SDK upgrade, the seam (and only the seam) needs porting; the `mcp` pin in
pyproject.toml admits only the minor versions this passed on.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.message import SessionMessage

from orchestrator_mcp.server import sdk

SEAM = Path(sdk.__file__)
CHECKED = {"_lowlevel_server", "_server_instances", "_connection", "_stream_protocols"}
"""The private names the tests below check; the seam must use no other."""

LEGACY = "2025-11-25"


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_seam_uses_no_private_name_these_tests_do_not_check() -> None:
    used: set[str] = set()
    for node in ast.walk(ast.parse(SEAM.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module:
            used |= {part for part in node.module.split(".") if part.startswith("_") and part != "__future__"}
    assert used == CHECKED


def test_mcpserver_keeps_its_lowlevel_server_in_lowlevel_server() -> None:
    mcp: MCPServer[Any] = MCPServer("seam")
    assert isinstance(vars(mcp).get("_lowlevel_server"), Server)
    assert sdk.lowlevel_server(mcp) is vars(mcp)["_lowlevel_server"]
    assert sdk.lowlevel_server(mcp).name == "seam"


def test_the_lowlevel_server_registers_and_replaces_handlers_by_method() -> None:
    assert parameters(Server.add_request_handler) == ["self", "method", "params_type", "handler"]
    assert parameters(Server.get_request_handler) == ["self", "method"]
    mcp: MCPServer[Any] = MCPServer("seam")
    server = sdk.lowlevel_server(mcp)
    sdk_own = server.get_request_handler("resources/list")
    assert sdk_own is not None  # MCPServer serves it itself...

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])

    sdk.add_request_handler(mcp, "resources/list", types.PaginatedRequestParams, list_resources)
    entry = server.get_request_handler("resources/list")  # ...and ours replaces it
    assert entry is not None and entry.handler is list_resources
    assert entry.params_type is types.PaginatedRequestParams


def test_the_lowlevel_server_runs_on_given_streams() -> None:
    assert parameters(Server.run)[:4] == ["self", "read_stream", "write_stream", "initialization_options"]
    assert all(
        parameter.default is not inspect.Parameter.empty
        for parameter in list(inspect.signature(Server.create_initialization_options).parameters.values())[1:]
    )
    from mcp.shared import _stream_protocols  # the stream types run_lowlevel is annotated with

    assert inspect.isclass(_stream_protocols.ReadStream) and inspect.isclass(_stream_protocols.WriteStream)


def test_a_server_session_keeps_its_connection_in_connection() -> None:
    assert "connection" in parameters(ServerSession.__init__)
    assert "_connection" in inspect.getsource(ServerSession.__init__)


def test_the_session_manager_keeps_its_transports_in_server_instances() -> None:
    manager = StreamableHTTPSessionManager(app=Server("seam"))
    assert vars(manager).get("_server_instances") == {}
    assert sdk.open_transports(manager) == []
    assert callable(StreamableHTTPServerTransport.terminate)


@asynccontextmanager
async def connected(mcp: MCPServer[Any]) -> AsyncIterator[tuple[Any, Any]]:
    """`mcp` run by `sdk.run_lowlevel` on memory streams, initialized at 2025-11-25: (send, receive)."""
    to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](10)
    server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](10)
    async with to_server, server_reads, server_writes, from_server, anyio.create_task_group() as group:
        group.start_soon(sdk.run_lowlevel, mcp, server_reads, server_writes)
        await to_server.send(
            SessionMessage(
                types.JSONRPCRequest(
                    jsonrpc="2.0",
                    id=0,
                    method="initialize",
                    params={
                        "protocolVersion": LEGACY,
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"},
                    },
                )
            )
        )
        reply = await from_server.receive()
        assert isinstance(reply.message, types.JSONRPCResponse), reply
        assert reply.message.result["serverInfo"]["name"] == mcp.name
        await to_server.send(
            SessionMessage(types.JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"))
        )
        try:
            yield to_server, from_server
        finally:
            await to_server.aclose()  # the read side closes: run_lowlevel returns


async def test_run_lowlevel_serves_handlers_added_through_the_seam_and_sessions_share_a_connection() -> None:
    mcp: MCPServer[Any] = MCPServer("seam")
    seen: list[tuple[ServerSession, Connection]] = []

    async def whoami(ctx: ServerRequestContext[Any], params: types.RequestParams) -> types.EmptyResult:
        seen.append((ctx.session, sdk.session_connection(ctx.session)))
        return types.EmptyResult()

    sdk.add_request_handler(mcp, "seam/whoami", types.RequestParams, whoami)
    with anyio.fail_after(10):
        async with connected(mcp) as (send, receive):
            for request_id in (1, 2):
                await send.send(
                    SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method="seam/whoami"))
                )
                reply = await receive.receive()
                assert isinstance(reply.message, types.JSONRPCResponse) and reply.message.id == request_id
    (first_session, first), (second_session, second) = seen
    assert first_session is not second_session  # a session per request...
    assert isinstance(first, Connection) and first is second  # ...over the one connection
    assert first.protocol_version == LEGACY


async def test_open_transports_lists_the_live_sessions_of_a_running_manager() -> None:
    mcp: MCPServer[Any] = MCPServer("seam")
    app = mcp.streamable_http_app(json_response=True)
    manager = mcp.session_manager
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    with anyio.fail_after(10):
        async with (
            manager.run(),
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
            ) as http,
        ):
            assert sdk.open_transports(manager) == []
            response = await http.post("/mcp", json=initialize, headers=headers)
            assert response.status_code == 200, response.text
            transports = sdk.open_transports(manager)
            assert [transport.mcp_session_id for transport in transports] == [
                response.headers["mcp-session-id"]
            ]
            assert list(sdk.open_session_ids(manager)) == [response.headers["mcp-session-id"]]
            await transports[0].terminate()
            assert transports[0].is_terminated


async def test_open_session_ids_forgets_a_deleted_session() -> None:
    mcp: MCPServer[Any] = MCPServer("seam")
    app = mcp.streamable_http_app(json_response=True)
    manager = mcp.session_manager
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    with anyio.fail_after(10):
        async with (
            manager.run(),
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
            ) as http,
        ):
            ids = sdk.open_session_ids(manager)
            opened = [(await http.post("/mcp", json=initialize, headers=headers)) for _ in range(2)]
            first, second = (response.headers["mcp-session-id"] for response in opened)
            assert set(ids) == {first, second}  # a live view
            session_headers = headers | {"mcp-session-id": first, "mcp-protocol-version": LEGACY}
            assert (await http.delete("/mcp", headers=session_headers)).status_code == 200
            assert set(ids) == {second}

"""`http.request` against a real HTTP server on a loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import uvicorn
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from orchestrator_mcp.catalog import ServerConnection, ToolCallError
from tests.conftest import text_of
from tool_catalog import create_http_server


async def echo_json(request: Request) -> Response:
    body = await request.json() if request.method == "POST" else None
    return JSONResponse(
        {
            "method": request.method,
            "query": dict(request.query_params),
            "body": body,
            "auth": request.headers.get("authorization"),
        }
    )


async def missing(request: Request) -> Response:
    return PlainTextResponse("no such thing", status_code=404)


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/echo", echo_json, methods=["GET", "POST"]), Route("/missing", missing)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
                await anyio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True


@pytest.fixture
async def http_tool() -> AsyncIterator[ServerConnection]:
    connection = ServerConnection("http", "builtin", create_http_server(["127.0.0.1"]))
    async with anyio.create_task_group() as group:
        await group.start(connection.run)
        yield connection
        connection.close()


async def call(connection: ServerConnection, **arguments: Any) -> Any:
    return await connection.call("request", arguments, 10)


async def test_get_returns_status_headers_and_json(http_tool: ServerConnection, base_url: str) -> None:
    result = await call(http_tool, url=f"{base_url}/echo", params={"q": "x"}, headers={"Authorization": "t"})
    assert result["status"] == 200
    assert result["json"] == {"method": "GET", "query": {"q": "x"}, "body": None, "auth": "t"}
    assert result["headers"]["content-type"] == "application/json"


async def test_post_sends_a_json_body(http_tool: ServerConnection, base_url: str) -> None:
    result = await call(http_tool, method="POST", url=f"{base_url}/echo", json={"a": [1, 2]})
    assert result["json"]["body"] == {"a": [1, 2]}


async def test_an_error_status_fails_unless_allowed(http_tool: ServerConnection, base_url: str) -> None:
    with pytest.raises(ToolCallError) as failure:
        await call(http_tool, url=f"{base_url}/missing")
    assert "HTTP 404" in failure.value.message and "no such thing" in failure.value.message
    allowed = await call(http_tool, url=f"{base_url}/missing", allow_error_status=True)
    assert allowed == {"status": 404, "headers": allowed["headers"], "text": "no such thing"}


async def test_hosts_outside_the_allow_list_are_refused(http_tool: ServerConnection) -> None:
    with pytest.raises(ToolCallError) as failure:
        await call(http_tool, url="http://example.com/")
    assert failure.value.message == "host 'example.com' is not allowed: ORCH_HTTP_ALLOW names only 127.0.0.1"


async def test_a_connection_error_is_a_tool_error_with_the_reason(http_tool: ServerConnection) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ToolCallError) as failure:
        await call(http_tool, url=f"http://127.0.0.1:{port}/", timeout_seconds=2)
    assert "failed" in failure.value.message


async def test_the_http_server_is_reachable_through_the_mcp_client(base_url: str) -> None:
    async with Client(create_http_server(["127.0.0.1"])) as client:
        result = await client.call_tool("request", {"url": f"{base_url}/echo"})
        assert result.structured_content is not None and result.structured_content["status"] == 200


async def test_a_call_outside_any_run_is_untrusted_and_refused_loopback(base_url: str) -> None:
    async with Client(create_http_server()) as client:
        result = await client.call_tool("request", {"url": f"{base_url}/echo"})
    assert result.is_error
    assert text_of(result).startswith("destination 127.0.0.1 (loopback) is refused")

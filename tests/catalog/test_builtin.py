"""Built-in tool servers: a run's direct call answers exactly what `tools/call` over a session does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from mcp import Client

from orchestrator_mcp.catalog import ServerConnection, ToolCallError
from orchestrator_mcp.catalog.results import result_value
from orchestrator_mcp.domain.retry import FailureKind
from tool_catalog import create_core_server
from tool_catalog._server import BuiltinTool, create_server

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"a": [1, {"b": None}], "text": "x"}),
    ("noop", {}),
    ("sleep", {"seconds": 0}),
    ("fail", {"message": "asked to"}),
    ("transform", {"data": {"items": [3, 1, 2]}, "expression": "sort(items)"}),
    ("transform", {"data": {"n": 1}, "expression": "n"}),
    ("sleep", {"seconds": "soon"}),
    ("noop", {"unexpected": 1}),
    ("missing", {}),
]


@pytest.mark.parametrize(("tool", "arguments"), CALLS)
async def test_a_direct_call_answers_what_a_session_call_does(tool: str, arguments: dict[str, Any]) -> None:
    server = create_core_server()
    direct = await server.call_tool_directly(tool, arguments)
    async with Client(server) as client:
        over_session = await client.call_tool(tool, arguments)
    assert direct.is_error == over_session.is_error
    assert result_value(direct) == result_value(over_session)


async def dated(arguments: dict[str, Any]) -> Any:
    return {"at": datetime(2026, 11, 24, 12, 0, tzinfo=UTC), "given": arguments}


async def test_a_direct_result_is_plain_json_and_not_the_handlers_objects() -> None:
    server = create_server("odd", [BuiltinTool("dated", "A date.", {"type": "object"}, dated)])
    given = {"nested": {"list": [1]}}
    value = result_value(await server.call_tool_directly("dated", given))
    assert value == {"at": "2026-11-24 12:00:00+00:00", "given": given}
    assert value["given"] is not given and value["given"]["nested"] is not given["nested"]


async def broken(arguments: dict[str, Any]) -> Any:
    raise KeyError("a bug")


async def test_a_handler_that_raises_fails_the_call_as_a_tool_error_not_the_caller() -> None:
    server = create_server("odd", [BuiltinTool("broken", "Raises.", {"type": "object"}, broken)])
    connection = ServerConnection("odd", "builtin", server)
    async with anyio.create_task_group() as group:
        await group.start(connection.run)
        with pytest.raises(ToolCallError) as raised:
            await connection.call("broken", {}, time_limit=5)
        connection.close()
    assert raised.value.kind is FailureKind.TOOL_ERROR
    assert raised.value.message == "internal error in odd.broken: KeyError: 'a bug'"


async def test_a_direct_call_over_its_time_limit_is_a_timeout() -> None:
    connection = ServerConnection("core", "builtin", create_core_server())
    async with anyio.create_task_group() as group:
        await group.start(connection.run)
        with pytest.raises(ToolCallError) as raised:
            await connection.call("sleep", {"seconds": 5}, time_limit=0.05)
        connection.close()
    assert raised.value.kind is FailureKind.TIMEOUT
    assert raised.value.message == "core.sleep did not answer within 0.05s"

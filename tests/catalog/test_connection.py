"""One downstream session, over a real stdio pipe to a server process that crashes on request."""

from __future__ import annotations

import sys

import anyio
import pytest
from mcp import StdioServerParameters

from orchestrator_mcp.catalog.connection import ServerConnection, ToolCallError
from orchestrator_mcp.domain.retry import FailureKind
from tests.catalog.support import FAULTY

pytestmark = pytest.mark.slow  # spawns downstream MCP server processes


async def test_a_call_right_after_a_crash_waits_for_a_new_session() -> None:
    server = StdioServerParameters(command=sys.executable, args=[FAULTY])
    connection = ServerConnection("faulty", "stdio", server)
    async with anyio.create_task_group() as group:
        await group.start(connection.run)
        first = await connection.call("pid", {}, 10)
        with pytest.raises(ToolCallError) as crashed:
            await connection.call("crash", {}, 10)
        assert crashed.value.kind is FailureKind.UNAVAILABLE
        # At once: the broken session is still being closed, and must not be handed out again.
        again = await connection.call("pid", {}, 10)
        assert again != first
        connection.close()


async def test_a_server_that_does_not_answer_in_time_is_unavailable_and_the_error_says_why() -> None:
    silent = StdioServerParameters(command=sys.executable, args=["-c", "import time; time.sleep(60)"])
    connection = ServerConnection("silent", "stdio", silent, connect_timeout=0.5)
    async with anyio.create_task_group() as group:
        group.start_soon(connection.run)
        with pytest.raises(ToolCallError) as failed:
            await connection.call("anything", {}, 5)
        group.cancel_scope.cancel()
    assert failed.value.kind is FailureKind.UNAVAILABLE
    assert failed.value.message == "server 'silent' is unavailable: no session within 0.5s"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-c", "import module_that_is_not_installed"], "No module named 'module_that_is_not_installed'"),
        (["/nonexistent/weather_server.py"], "can't open file '/nonexistent/weather_server.py'"),
    ],
    ids=["missing-module", "missing-file"],
)
async def test_a_server_that_exits_at_start_is_unavailable_with_the_end_of_its_stderr(
    args: list[str], said: str
) -> None:
    server = StdioServerParameters(command=sys.executable, args=args)
    connection = ServerConnection("gone", "stdio", server)
    async with anyio.create_task_group() as group:
        await group.start(connection.run)  # the start-up probe has ended
        assert (connection.state, connection.available) == ("unavailable", False)
        assert connection.error is not None and said in connection.error
        with pytest.raises(ToolCallError) as failed:
            await connection.call("anything", {}, 5)
        connection.close()
    assert failed.value.kind is FailureKind.UNAVAILABLE
    assert failed.value.message.startswith("server 'gone' is unavailable: ")
    assert said in failed.value.message


async def test_a_crash_mid_call_fails_unavailable_with_what_the_process_said() -> None:
    server = StdioServerParameters(command=sys.executable, args=[FAULTY])
    connection = ServerConnection("faulty", "stdio", server)
    async with anyio.create_task_group() as group:
        await group.start(connection.run)
        with pytest.raises(ToolCallError) as crashed:
            await connection.call("crash", {}, 10)
        connection.close()
    assert crashed.value.kind is FailureKind.UNAVAILABLE
    assert crashed.value.message.startswith("server 'faulty' closed the connection")
    assert "faulty: crashing on request" in crashed.value.message


async def test_a_server_still_starting_is_starting_and_has_no_error() -> None:
    silent = StdioServerParameters(command=sys.executable, args=["-c", "import time; time.sleep(60)"])
    connection = ServerConnection("slow", "stdio", silent, connect_timeout=0.2)
    async with anyio.create_task_group() as group:
        group.start_soon(connection.run)
        assert await connection.connect() is None  # gave up waiting; the process is still starting
        assert (connection.state, connection.available, connection.error) == ("starting", False, None)
        group.cancel_scope.cancel()

"""One downstream session, over a real stdio pipe to a server process that crashes on request."""

from __future__ import annotations

import sys

import anyio
import pytest
from mcp import StdioServerParameters

from orchestrator_mcp.catalog.connection import ServerConnection, ToolCallError
from orchestrator_mcp.domain.retry import FailureKind
from tests.catalog.test_downstream import FAULTY

pytestmark = pytest.mark.anyio


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

"""HTTP downstream sessions across a restart of the server: the session is reopened and the call
sent again; a server that is gone is `unavailable`, in its own words, until it is back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from tests.catalog.support import ServerProcess, log_of, run
from tests.conftest import call_ok

pytestmark = pytest.mark.slow  # spawns downstream MCP server processes

PID = [{"id": "p", "uses": "remote.pid"}]


@pytest.fixture(params=["--old", "--old-404"], ids=["typescript-400", "python-404"])
async def remote(request: pytest.FixtureRequest) -> AsyncIterator[ServerProcess]:
    """A handshake-era HTTP server (sessions with ids), forgetting sessions in one SDK's words or
    the other's when it restarts."""
    server = ServerProcess("--http", request.param)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(settings: Settings, tmp_path: Path, remote: ServerProcess) -> AsyncIterator[Client]:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"mcpServers": {"remote": {"type": "http", "url": remote.url("/mcp")}}}))
    async with Client(create_server(settings.model_copy(update={"catalog": catalog}))) as connected:
        yield connected


async def remote_state(client: Client) -> dict[str, Any]:
    servers: list[dict[str, Any]] = (await call_ok(client, "list_catalog", {"server": "remote"}))["servers"]
    return servers[0]


async def test_a_restarted_http_server_gets_a_new_session_and_the_call_is_sent_again(
    client: Client, remote: ServerProcess
) -> None:
    before = await run(client, PID)
    assert before["status"] == "succeeded", before["error"]
    await remote.stop()
    await remote.start()  # same port, new process: it knows no session

    after = await run(client, PID)
    assert after["status"] == "succeeded", after["error"]
    assert after["steps"][0]["result"] != before["steps"][0]["result"]
    assert after["steps"][0]["attempts"] == 1  # sent again on the new session, not retried as a step
    assert await remote_state(client) == {
        "name": "remote",
        "transport": "http",
        "state": "available",
        "available": True,
        "error": None,
    }
    again = await run(client, PID)  # and the new session is the one kept
    assert again["steps"][0]["result"] == after["steps"][0]["result"]


async def test_a_stopped_http_server_fails_the_step_unavailable_in_its_own_words_until_it_is_back(
    client: Client, remote: ServerProcess
) -> None:
    assert (await run(client, PID))["status"] == "succeeded"
    await remote.stop()

    failed = await run(client, PID)
    assert failed["status"] == "failed"
    error = failed["error"]
    assert (error["step_id"], error["type"]) == ("p", "unavailable")
    assert error["message"].startswith("server 'remote' ")
    assert "ConnectError" in error["message"]  # what the HTTP client met: nobody listening
    assert "ConnectError" in await log_of(client, failed)
    state = await remote_state(client)
    assert (state["state"], state["available"]) == ("unavailable", False)
    assert "ConnectError" in state["error"]

    await remote.start()
    back = await run(client, PID)
    assert back["status"] == "succeeded", back["error"]
    assert (await remote_state(client))["state"] == "available"


async def test_a_server_that_answered_only_the_handshake_is_not_probed_again(
    client: Client, remote: ServerProcess
) -> None:
    probes = [{"id": "n", "uses": "remote.probes"}]
    assert (await run(client, probes))["steps"][0]["result"] == {"result": 1}  # the first connect's
    await remote.stop()
    await remote.start()
    assert (await run(client, probes))["steps"][0]["result"] == {"result": 0}  # reopened without one

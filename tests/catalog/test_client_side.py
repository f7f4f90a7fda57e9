"""The orchestrator as a client of real downstream servers: the capabilities it declares (roots,
elicitation, sampling) and what it answers, the tools' declarations in `list_catalog`, and the
progress and log messages of a call carried into the run. Servers on stdio, streamable HTTP and
the legacy HTTP+SSE transport."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from tests.catalog.support import FAULTY, ServerProcess, log_of, run
from tests.conftest import call_ok

pytestmark = pytest.mark.slow  # spawns downstream MCP server processes

ROOTS = ["file:///tmp/notes", "file:///srv/shared"]


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, ServerProcess]]:
    sse, http = ServerProcess("--sse"), ServerProcess("--http")
    try:
        await sse.start()
        await http.start()
        yield {"sse": sse, "http": http}
    finally:
        await sse.stop()
        await http.stop()


@pytest.fixture
async def client(
    settings: Settings, tmp_path: Path, servers: dict[str, ServerProcess]
) -> AsyncIterator[Client]:
    catalog = tmp_path / "catalog.json"
    entries = {
        "old": {"type": "sse", "url": servers["sse"].url("/sse"), "roots": ROOTS},
        "remote": {"type": "streamable-http", "url": servers["http"].url("/mcp")},
        "local": {"type": "stdio", "command": sys.executable, "args": [FAULTY]},
    }
    catalog.write_text(json.dumps({"mcpServers": entries}))
    async with Client(create_server(settings.model_copy(update={"catalog": catalog}))) as connected:
        yield connected


async def test_an_sse_server_is_listed_and_called_like_any_other(client: Client) -> None:
    result = await run(client, [{"id": "a", "uses": "old.add", "with": {"a": 1, "b": 2}}])
    assert result["status"] == "succeeded", result["error"]
    assert result["steps"][0]["result"] == {"result": 3}
    (server,) = (await call_ok(client, "list_catalog", {"server": "old"}))["servers"]
    assert (server["transport"], server["state"], server["error"]) == ("sse", "available", None)


async def test_an_elicitation_during_a_run_is_declined_and_logged(client: Client) -> None:
    result = await run(client, [{"id": "ask", "uses": "old.ask"}])
    assert result["steps"][0]["result"] == {"result": "decline"}
    log = await log_of(client, result)
    assert "WARNING [step ask] server 'old' asked for input (What is your name?): declined" in log


async def test_a_sampling_request_is_declined_and_logged(client: Client) -> None:
    result = await run(client, [{"id": "s", "uses": "old.sample"}])
    assert result["steps"][0]["result"] == {
        "result": "declined: sampling declined: the orchestrator has no model configured"
    }
    assert "server 'old' asked for a model completion: declined" in await log_of(client, result)


async def test_the_roots_of_the_catalog_entry_are_declared(client: Client) -> None:
    result = await run(client, [{"id": "r", "uses": "old.roots"}])
    assert result["steps"][0]["result"] == {"result": ROOTS}


async def test_list_catalog_carries_what_each_server_declared_of_its_tools(client: Client) -> None:
    tools = {tool["uses"]: tool for tool in (await call_ok(client, "list_catalog"))["tools"]}
    for server in ("old", "remote", "local"):
        erase = tools[f"{server}.erase"]
        assert erase["title"] == "Erase a note"
        assert erase["annotations"] == {"destructiveHint": True, "idempotentHint": True}
        assert tools[f"{server}.add"]["output_schema"]["properties"]["result"]["type"] == "integer"
        assert tools[f"{server}.add"]["annotations"] is None
    assert tools["old.tasked"]["task_support"] == "required"  # a handshake-era listing carries it
    assert tools["old.add"]["task_support"] is None
    assert tools["core.echo"]["title"] is None and tools["core.echo"]["output_schema"] is None


async def test_a_tool_that_requires_task_augmentation_is_refused_at_validation(client: Client) -> None:
    result = await call_ok(client, "validate_pipeline", {"pipeline": [{"id": "t", "uses": "old.tasked"}]})
    assert result["valid"] is False
    assert result["errors"] == [
        {
            "path": "pipeline[0].uses",
            "message": "'old.tasked' requires MCP task augmentation (execution.taskSupport: required), "
            "which the orchestrator does not support",
        }
    ]


@pytest.mark.parametrize("server", ["local", "remote", "old"])
async def test_progress_and_log_messages_reach_a_waited_run_now_and_the_run_log(
    client: Client, server: str
) -> None:
    task = await call_ok(
        client,
        "schedule_task",
        {
            "title": "chatty",
            "schedule": {"kind": "manual"},
            "pipeline": [
                {"id": "first", "uses": "core.noop"},
                {"id": "talk", "uses": f"{server}.chatty", "with": {"steps": 3}},
            ],
        },
    )
    heard: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message))

    started = anyio.current_time()
    result = await client.call_tool(
        "run_now", {"task_id": task["id"], "wait": True}, progress_callback=on_progress
    )
    elapsed = anyio.current_time() - started
    run_view: dict[str, Any] = result.structured_content or {}
    assert run_view["status"] == "succeeded", run_view["error"]

    assert (1 + 1 / 3, 2.0, "step talk: part 1 of 3 (1/3)") in heard  # one step done, a third of the next
    values = [progress for progress, _, _ in heard]
    assert values == sorted(values)  # progress never goes back

    log = await log_of(client, run_view)
    lines = [line for line in log.splitlines() if "[step talk] progress:" in line]
    assert lines[0].endswith("INFO [step talk] progress: part 1 of 3 (1/3)")
    assert len(lines) <= 1 + int(elapsed)  # at most one a second
    assert f"INFO [step talk] [{server}] chatty: all parts done" in log
    assert f"WARNING [step talk] [{server}] chatty: the last part was slow" in log

"""Pipelines calling real downstream MCP servers over stdio and loopback HTTP (no mocked client)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import BlobResourceContents, TextResourceContents

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from tests.catalog.support import FAULTY, WEATHER, free_port, log_of, run
from tests.conftest import call_error, call_ok, step_running

pytestmark = pytest.mark.slow  # spawns downstream MCP server processes


async def marker_says(marker: Path, state: str) -> bool:
    """Wait until the faulty server's marker says `state` ('hanging' once a `hang` call is in,
    'cancelled' once it is cancelled); the 30 s are a bound, not an expectation."""
    path = anyio.Path(marker)
    with anyio.fail_after(30):
        while True:
            if await path.exists() and await path.read_text() == state:
                return True
            await anyio.sleep(0.05)


async def downstream_saw_cancellation(marker: Path) -> bool:
    return await marker_says(marker, "cancelled")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "cancelled.marker"


@pytest.fixture
def http_faulty() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, FAULTY, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60  # a bound for a loaded machine
        while True:  # a sync fixture, outside any coroutine: blocking here stalls no event loop
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the faulty HTTP server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def catalog_file(tmp_path: Path, marker: Path, http_faulty: str) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "globalShortcut": "ignored",
                "mcpServers": {
                    "weather": {"command": sys.executable, "args": [WEATHER]},
                    "faulty": {
                        "command": sys.executable,
                        "args": [FAULTY],
                        "env": {"FAULTY_MARKER": str(marker)},
                    },
                    "remote": {"url": http_faulty, "headers": {"X-Test": "1"}},
                    "missing": {"command": "/nonexistent/mcp-server-that-is-not-installed"},
                    "broken": {"type": "websocket", "url": "ws://127.0.0.1:9/mcp"},
                    "off": {"command": "whatever", "disabled": True},
                },
            }
        )
    )
    return path


@pytest.fixture
async def client(settings: Settings, catalog_file: Path) -> AsyncIterator[Client]:
    settings = settings.model_copy(update={"catalog": catalog_file})
    async with Client(create_server(settings)) as connected:
        yield connected


async def test_a_pipeline_uses_two_downstream_tools_with_templates(client: Client) -> None:
    result = await run(
        client,
        [
            {
                "id": "fc",
                "uses": "weather.get_forecast",
                "with": {"city": "${{ params.city }}", "day": "2026-06-01"},
                "save_as": "fc",
            },
            {
                "id": "post",
                "uses": "weather.post_message",
                "if": "vars.fc.rain_probability >= `0`",
                "with": {
                    "channel": "alerts",
                    "text": "${{ vars.fc.city }}: ${{ vars.fc.rain_probability }}% rain",
                },
            },
        ],
        params={"city": "Lyon"},
    )
    assert result["status"] == "succeeded", result
    forecast = result["steps"][0]["result"]
    assert forecast["city"] == "Lyon" and forecast["date"] == "2026-06-01"
    assert result["steps"][1]["result"]["text"] == f"Lyon: {forecast['rain_probability']}% rain"


async def test_arguments_are_checked_against_the_downstream_schema_at_schedule_time(client: Client) -> None:
    result = await call_ok(
        client,
        "validate_pipeline",
        {
            "pipeline": [
                {"id": "a", "uses": "weather.get_forcast", "with": {"city": "Lyon"}},
                {"id": "b", "uses": "weather.get_forecast", "with": {"city": 5}},
                {"id": "c", "uses": "weather.post_message", "with": {"channel": "x"}},
                {"id": "d", "uses": "weather.get_forecast", "with": {"city": "${{ params.city }}"}},
            ]
        },
    )
    errors = {error["path"]: error["message"] for error in result["errors"]}
    assert "did you mean 'weather.get_forecast'" in errors["pipeline[0].uses"]
    assert "pipeline[1].with.city" in errors
    assert errors["pipeline[2].with.text"] == "required"
    assert not any(path.startswith("pipeline[3]") for path in errors)


async def test_a_rendered_argument_of_the_wrong_type_fails_the_step_naming_it(client: Client) -> None:
    result = await run(
        client,
        [{"id": "fc", "uses": "weather.get_forecast", "with": {"city": "${{ params.n }}"}}],
        params={"n": 5},
    )
    assert result["error"]["type"] == "invalid_arguments"
    assert "pipeline[0].with.city" in result["error"]["message"]


async def test_a_downstream_tool_error_reaches_the_run_error_and_log(client: Client) -> None:
    result = await run(client, [{"id": "f", "uses": "faulty.fail", "with": {"message": "quota exceeded"}}])
    assert (result["error"]["step_id"], result["error"]["type"]) == ("f", "tool_error")
    assert result["error"]["message"] == "Error executing tool fail: quota exceeded"  # the server's own text
    log = (await client.read_resource(result["log_uri"])).contents[0].text  # type: ignore[union-attr]
    assert "quota exceeded" in log


async def test_a_crash_mid_call_is_unavailable_and_the_next_run_reconnects(client: Client) -> None:
    first_pid = (await run(client, [{"id": "p", "uses": "faulty.pid"}]))["steps"][0]["result"]
    crashed = await run(client, [{"id": "c", "uses": "faulty.crash"}])
    assert crashed["status"] == "failed" and crashed["error"]["type"] == "unavailable"
    assert "faulty: crashing on request" in crashed["error"]["message"]  # its last words, on stderr
    again = await run(
        client,
        [{"id": "p", "uses": "faulty.pid"}, {"id": "a", "uses": "faulty.add", "with": {"a": 2, "b": 3}}],
    )
    assert again["status"] == "succeeded", again["error"]
    assert again["steps"][0]["result"] != first_pid
    assert again["steps"][1]["result"] == {"result": 5}  # structuredContent, as the server wrapped it


async def test_retry_on_unavailable_survives_a_crash(client: Client) -> None:
    result = await run(
        client,
        [
            {"id": "c", "uses": "faulty.crash", "retry": {"max_attempts": 2, "backoff_seconds": 0}},
        ],
    )
    assert result["steps"][0]["attempts"] == 2


async def test_a_hanging_downstream_tool_is_cut_by_the_step_timeout(client: Client, marker: Path) -> None:
    with anyio.fail_after(10):
        result = await run(client, [{"id": "h", "uses": "faulty.hang", "timeout_seconds": 1}])
    assert result["status"] == "failed" and result["steps"][0]["status"] == "timed_out"
    assert await downstream_saw_cancellation(marker)


async def test_cancel_run_cancels_the_downstream_call(client: Client, marker: Path) -> None:
    task = await call_ok(
        client,
        "schedule_task",
        {"title": "h", "schedule": {"kind": "manual"}, "pipeline": [{"id": "h", "uses": "faulty.hang"}]},
    )
    started = await call_ok(client, "run_now", {"task_id": task["id"]})
    await step_running(client, started["id"])
    await marker_says(marker, "hanging")  # the call has reached the downstream server
    cancelled = await call_ok(client, "cancel_run", {"run_id": started["id"]})
    assert cancelled["status"] == "cancelled"
    assert await downstream_saw_cancellation(marker)


async def test_http_downstream_servers_are_called_like_stdio_ones(client: Client) -> None:
    result = await run(
        client,
        [
            {"id": "a", "uses": "remote.add", "with": {"a": 1, "b": 41}},
            {"id": "f", "uses": "remote.fail", "with": {"message": "nope"}, "continue_on_error": True},
        ],
    )
    assert result["steps"][0]["result"] == {"result": 42}
    assert result["steps"][1]["error"] == "Error executing tool fail: nope"


async def test_list_catalog_shows_a_missing_server_and_a_bad_entry_unavailable_and_keeps_serving(
    client: Client,
) -> None:
    await run(client, [{"id": "a", "uses": "weather.list_cities"}])
    catalog = await call_ok(client, "list_catalog")
    servers = {server["name"]: server for server in catalog["servers"]}
    assert set(servers) == {"core", "http", "weather", "faulty", "remote", "missing", "broken"}
    assert servers["missing"]["available"] is False and servers["missing"]["state"] == "unavailable"
    assert "FileNotFoundError" in servers["missing"]["error"]
    assert servers["broken"] == {
        "name": "broken",
        "transport": "unknown",
        "state": "unavailable",
        "available": False,
        "error": "mcpServers.broken.type: 'websocket' is not supported; "
        "expected stdio, http, streamable-http or sse",
    }
    assert servers["missing"]["transport"] == "stdio" and servers["remote"]["transport"] == "http"
    assert servers["weather"]["available"] is True and servers["weather"]["state"] == "available"
    assert servers["weather"]["error"] is None
    uses = {tool["uses"] for tool in catalog["tools"]}
    assert {"weather.get_forecast", "weather.post_message", "faulty.hang"} <= uses
    status = await call_ok(client, "server_status")
    assert status["catalog"]["servers_total"] == 7


async def test_a_task_naming_an_unavailable_servers_tool_is_saved_with_a_warning(client: Client) -> None:
    pipeline = [{"id": "w", "uses": "weather.list_cities"}, {"id": "m", "uses": "missing.tool"}]
    checked = await call_ok(client, "validate_pipeline", {"pipeline": pipeline})
    assert checked["valid"] is True and checked["errors"] == []
    assert [warning["path"] for warning in checked["warnings"]] == ["pipeline[1].uses"]
    assert "server 'missing' is unavailable" in checked["warnings"][0]["message"]
    assert "checked again when the step runs" in checked["warnings"][0]["message"]

    task = await call_ok(
        client, "schedule_task", {"title": "x", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )
    assert [warning["path"] for warning in task["warnings"]] == ["pipeline[1].uses"]
    assert (await call_ok(client, "get_task", {"task_id": task["id"]}))["id"] == task["id"]
    updated = await call_ok(client, "update_task", {"task_id": task["id"], "title": "y"})
    assert [warning["path"] for warning in updated["warnings"]] == ["pipeline[1].uses"]
    run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
    assert run["status"] == "failed" and run["error"]["step_id"] == "m"
    assert run["error"]["type"] == "unavailable"  # the run-time check still applies
    # An error elsewhere in the pipeline is still an error beside the warning.
    bad = [*pipeline, {"id": "e", "uses": "core.echo", "if": "a."}]
    refused = await call_error(
        client, "schedule_task", {"title": "x", "schedule": {"kind": "manual"}, "pipeline": bad}
    )
    assert "pipeline[2].if" in refused and "missing" not in refused


async def test_no_downstream_process_outlives_the_orchestrator(
    settings: Settings, catalog_file: Path
) -> None:
    settings = settings.model_copy(update={"catalog": catalog_file})
    async with Client(create_server(settings)) as connected:
        pid = (await run(connected, [{"id": "p", "uses": "faulty.pid"}]))["steps"][0]["result"]["result"]
        os.kill(pid, 0)
    with anyio.fail_after(5):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await anyio.sleep(0.05)


async def test_a_tool_added_by_a_running_server_is_found_when_a_pipeline_uses_it(client: Client) -> None:
    grew = await run(client, [{"id": "g", "uses": "faulty.grow", "with": {"name": "brand_new"}}])
    assert grew["status"] == "succeeded"
    result = await run(client, [{"id": "n", "uses": "faulty.brand_new"}])
    assert result["status"] == "succeeded", result
    assert result["steps"][0]["result"] == {"result": "grown"}
    assert "faulty.brand_new" in {tool["uses"] for tool in (await call_ok(client, "list_catalog"))["tools"]}


async def test_every_content_block_is_kept_listed_readable_whole_and_seen_by_later_steps(
    client: Client,
) -> None:
    pipeline: list[dict[str, Any]] = [
        {"id": "pic", "uses": "faulty.picture"},
        {"id": "next", "uses": "core.echo", "with": {"kinds": "${{ steps.pic.content[*].type }}"}},
    ]
    result = await run(client, pipeline)
    assert result["status"] == "succeeded", result["error"]
    pic = result["steps"][0]
    assert pic["result"] == "a red dot"
    base = f"orchestrator://runs/{result['id']}/steps/pic/content"
    assert pic["content"] == [
        {"uri": f"{base}/0", "type": "image", "mime_type": "image/png", "size": 4},
        {"uri": "file:///tmp/notes.txt", "type": "resource_link", "mime_type": None, "name": "notes"},
        {
            "uri": f"{base}/2",
            "type": "resource",
            "mime_type": "text/plain",
            "name": "memo://1",
            "size": 8,
            "text": "remember",
        },
        {
            "uri": f"{base}/3",
            "type": "resource",
            "mime_type": "application/pdf",
            "name": "memo://2",
            "size": 4,
        },
    ]
    assert result["steps"][1]["result"] == {"kinds": ["image", "resource_link", "resource", "resource"]}

    image = (await client.read_resource(f"{base}/0")).contents[0]
    assert isinstance(image, BlobResourceContents) and image.mime_type == "image/png"
    assert base64.b64decode(image.blob) == base64.b64decode("iVBORw==")
    text = (await client.read_resource(f"{base}/2")).contents[0]
    assert isinstance(text, TextResourceContents) and (text.text, text.mime_type) == (
        "remember",
        "text/plain",
    )
    pdf = (await client.read_resource(f"{base}/3")).contents[0]
    assert isinstance(pdf, BlobResourceContents) and pdf.mime_type == "application/pdf"
    assert base64.b64decode(pdf.blob) == b"%PDF"
    with pytest.raises(MCPError, match="no content block 9"):
        await client.read_resource(f"{base}/9")
    log = await log_of(client, result)
    assert (
        "INFO [step pic] kept 4 content block(s): image image/png, resource_link, resource text/plain" in log
    )

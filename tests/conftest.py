from __future__ import annotations

import inspect
import json
import os
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from orchestrator_mcp.store.tables import LogRow, LogValues, StepRow, StepValues

# Server processes the tests start leave no worker behind them; the tests of the background worker
# turn it on where they mean to.
os.environ["ORCH_BACKGROUND_WORKER"] = "off"


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, object, object]:
    """Every coroutine test runs on anyio: mark it here, once, before anyio's own hook looks for the mark.

    (Marking in `pytest_collection_modifyitems` would be too late: by then anyio has decided which
    tests take its `anyio_backend` fixture.)
    """
    if collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)
    return (yield)


@pytest.fixture
def anyio_backend() -> str:
    """The one backend every async test and fixture runs on."""
    return "asyncio"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, poll_interval_seconds=0.2, heartbeat_seconds=1, shutdown_grace_seconds=0.5
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(settings)) as connected:
        yield connected


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call_ok(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a tool that must succeed; returns its structured content (checked equal to its JSON text)."""
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    content: dict[str, Any] = result.structured_content
    assert json.loads(text_of(result)) == content
    return content


async def call_error(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """Call a tool that must fail with a tool error; returns the error text."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"expected an error, got {result.structured_content}"
    text = text_of(result)
    assert "Traceback" not in text
    return text


def echo_pipeline(**with_: Any) -> list[dict[str, Any]]:
    return [{"id": "echo", "uses": "core.echo", "with": with_, "save_as": "echoed"}]


async def step_running(client: Client, run_id: str, step: int = 0) -> None:
    """Wait (at most 10 s) until the run's step is running: its tool call is in flight."""
    with anyio.fail_after(10):
        while True:
            steps = (await call_ok(client, "get_run", {"run_id": run_id}))["steps"]
            if steps and steps[step]["status"] == "running":
                return
            await anyio.sleep(0.05)


def step_values(row: StepRow) -> StepValues:
    """A step row as a run's progress write takes it."""
    return cast(StepValues, row.model_dump())


def log_values(row: LogRow) -> LogValues:
    """A log row as a run's progress write takes it."""
    return cast(LogValues, row.model_dump(exclude={"id"}))

"""Subscriptions to a run over real HTTP: notices arrive as the run progresses, in both generations."""

from __future__ import annotations

import warnings
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

from orchestrator_mcp.config import Settings
from tests.conftest import call_ok
from tests.http.support import serving

pytestmark = pytest.mark.anyio

SLOW_STEPS = [{"id": step, "uses": "core.sleep", "with": {"seconds": 0.4}} for step in "abc"]


async def watch_a_run(client: Client, heard: list[str], mode: str) -> tuple[dict[str, Any], str]:
    """Start a three-step run, subscribe to it, wait until it ended; returns (the run, its URI)."""
    task = await call_ok(
        client, "schedule_task", {"title": "watched", "schedule": {"kind": "manual"}, "pipeline": SLOW_STEPS}
    )
    run = await call_ok(client, "run_now", {"task_id": task["id"]})
    uri = f"orchestrator://runs/{run['id']}"
    async with anyio.create_task_group() as group:
        if mode == "legacy":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.subscribe_resource(uri)
        else:

            async def listen() -> None:
                async with client.listen(resource_subscriptions=[uri]) as subscription:
                    heard.extend([getattr(event, "uri", "") async for event in subscription])

            group.start_soon(listen)
        with anyio.fail_after(15):
            while True:
                run = await call_ok(client, "get_run", {"run_id": run["id"]})
                if run["status"] == "succeeded":
                    break
                await anyio.sleep(0.1)
        await anyio.sleep(0.5)  # the last notice may trail by one interval
        group.cancel_scope.cancel()
    return run, uri


@pytest.mark.parametrize(
    ("mode", "stateless"), [("legacy", False), ("2026-07-28", False), ("2026-07-28", True)]
)
async def test_a_subscription_hears_each_step_of_a_run_over_http(
    settings: Settings, mode: str, stateless: bool
) -> None:
    heard: list[str] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            heard.append(message.params.uri)

    async with serving(settings, auth=False, stateless=stateless) as server:
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)) as http_client,
            Client(
                streamable_http_client(server.url, http_client=http_client),
                mode=mode,
                message_handler=on_message,
            ) as client,
        ):
            run, uri = await watch_a_run(client, heard, mode)
    assert run["steps_completed"] == 3
    assert heard.count(uri) >= 3, heard  # started / steps / ended, a few merged by the 4-per-second cap
    assert set(heard) == {uri}

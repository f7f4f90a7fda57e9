"""Subscriptions to a run over real HTTP: notices arrive as the run progresses, in both generations."""

from __future__ import annotations

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client

from orchestrator_mcp.config import Settings
from tests.http.support import serving
from tests.watching import watch_a_run


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
            run, uri = await watch_a_run(client, client, mode, heard, step_seconds=0.4, settle=0.5)
    assert run["steps_completed"] == 3
    assert heard.count(uri) >= 3, heard  # started / steps / ended, a few merged by the 4-per-second cap
    assert set(heard) == {uri}

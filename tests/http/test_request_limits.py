"""Every MCP request counts toward its principal's rate limit (SPEC §11): tool calls against
`ORCH_RATE_LIMIT`, every other request against ten times it, each principal on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference

from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.config import Settings
from orchestrator_mcp.server.request_limits import LIMITED
from tests.conftest import call_ok
from tests.http.limits import open_session, refusal, still_answers
from tests.http.support import connect, serving

PREVIEW = {"schedule": {"kind": "interval", "expr": "1h"}, "count": 1}
OVER = (
    "rate limit: principal 'alice' may make 60 requests other than tool calls per minute; "
    "retry in 1 s (retry_after_seconds=1)"
)


async def requests_until_refused(client: Client) -> tuple[int, MCPError]:
    """Send cheap requests (`prompts/list`, past the client's cache) until refused: how many were
    answered, and the refusal."""
    answered = 0
    with anyio.fail_after(30):
        while True:
            try:
                await client.list_prompts(cache_mode="bypass")
            except MCPError as error:
                return answered, error
            answered += 1


async def test_other_requests_count_against_ten_times_the_rate_limit_and_recover(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit": 6})  # 6 tool calls, 60 other requests a minute
    clock = ManualClock(datetime.now(UTC))
    async with serving(limited, clock) as server:
        async with connect(server.url, await server.token("alice")) as alice:  # initialize: 1
            await call_ok(alice, "preview_schedule", PREVIEW)  # a tool call, and the client's tools/list: 1
            answered, refused = await requests_until_refused(alice)
            assert answered == 58
            assert refused.error.code == LIMITED and str(refused) == OVER
            assert refused.error.data == {"retry_after_seconds": 1}
            for request in (
                alice.read_resource("orchestrator://catalog"),
                alice.list_resources(cache_mode="bypass"),
                alice.complete(PromptReference(name="diagnose_run"), {"name": "run_id", "value": ""}),
                alice.call_tool("no_such_tool", {}),  # not one of ours: not a tool call, a request
            ):
                with pytest.raises(MCPError, match="rate limit: principal 'alice' may make 60 requests"):
                    await request
            await call_ok(alice, "preview_schedule", PREVIEW)  # tool calls have a budget of their own
            # A new session is refused before it is opened: 429 with Retry-After.
            async with httpx2.AsyncClient() as http:
                response = await open_session(http, server.url, await server.token("alice"))
            assert refusal(response) == OVER and response.headers["retry-after"] == "1"
            assert (server.http.sessions is not None) and server.http.sessions.open_sessions("alice") == 1
            # Another principal is not held back by alice's limit.
            await still_answers(server.url, await server.token("bob"))
            clock.advance(1)  # one request's worth of refill
            await alice.list_prompts(cache_mode="bypass")
            with pytest.raises(MCPError, match="rate limit"):
                await alice.list_prompts(cache_mode="bypass")


async def test_a_flood_of_bare_initialize_requests_is_rate_limited(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit": 1, "max_sessions_per_principal": 1000})
    clock = ManualClock(datetime.now(UTC))
    async with serving(limited, clock) as server, httpx2.AsyncClient(timeout=30) as http:
        mallory = await server.token("mallory", "catalog:read")
        statuses = [(await open_session(http, server.url, mallory)).status_code for _ in range(15)]
        assert statuses == [200] * 10 + [429] * 5  # ten requests a minute, initialize included
        await still_answers(server.url, await server.token("alice"))


@pytest.mark.parametrize("stateless", [False, True])
async def test_the_newer_protocol_generation_is_counted_too(settings: Settings, stateless: bool) -> None:
    limited = settings.model_copy(update={"rate_limit": 6})
    clock = ManualClock(datetime.now(UTC))
    async with serving(limited, clock, stateless=stateless) as server:
        async with connect(server.url, await server.token("alice"), "2026-07-28") as alice:
            answered, refused = await requests_until_refused(alice)
            assert answered == 60  # the client sent nothing before them at this version
            assert str(refused) == OVER
            await still_answers(server.url, await server.token("bob"), "2026-07-28")

"""Quotas per principal over real HTTP (SPEC §11): open sessions, active tasks, a definition's size and
open listen streams. Each is met with a clear error naming the limit, the server still answers the
others, and use within the limit still works."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from orchestrator_mcp.config import Settings
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.server.http import end_sessions
from orchestrator_mcp.service.quotas import TaskQuotas, definition_size
from tests.conftest import call_error, call_ok, echo_pipeline
from tests.http.limits import (
    delete_session,
    open_session,
    refusal,
    refused_connection,
    still_answers,
    tool_error,
)
from tests.http.support import ALL, connect, serving

MANUAL = {"kind": "manual"}


def test_the_defaults_are_those_of_the_spec() -> None:
    settings = Settings(database_url="sqlite:///unused.db")
    assert settings.max_tasks_per_principal == 1000
    assert settings.max_definition_bytes == 256 * 1024
    assert settings.max_sessions_per_principal == 100
    assert settings.max_listen_streams_per_principal == 64
    assert settings.rate_limit == 600
    assert TaskQuotas() == TaskQuotas(1000, 256 * 1024)


async def test_the_server_applies_the_default_session_and_request_limits(settings: Settings) -> None:
    async with serving(settings) as server:
        assert server.http.sessions is not None and server.http.sessions.per_principal == 100
        assert server.http.served.requests is not None and server.http.served.requests.per_minute == 6000


# -- sessions ------------------------------------------------------------------------------------


async def test_the_hundredth_session_opens_the_next_is_refused_and_others_still_connect(
    settings: Settings,
) -> None:
    async with serving(settings) as server, httpx2.AsyncClient(timeout=30) as http:
        mallory = await server.token("mallory", "catalog:read")  # the weakest token will do
        opened = [await open_session(http, server.url, mallory) for _ in range(100)]
        assert [response.status_code for response in opened] == [200] * 100
        message = refusal(await open_session(http, server.url, mallory))
        assert message == (
            "session limit: principal 'mallory' may hold 100 open sessions "
            "(ORCH_MAX_SESSIONS_PER_PRINCIPAL); end one (HTTP DELETE) or let an idle one expire first"
        )
        assert await refused_connection(server.url, mallory) == message  # the SDK's client reads it as it is
        await still_answers(server.url, await server.token("alice"))
        await still_answers(server.url, await server.token("bob"), mode="auto")
        # Ending a session makes room for one more, and only one.
        session = opened[0].headers["mcp-session-id"]
        assert await delete_session(http, server.url, mallory, session) == 200
        assert (await open_session(http, server.url, mallory)).status_code == 200
        assert (await open_session(http, server.url, mallory)).status_code == 429


async def test_sessions_the_server_ends_are_counted_down(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_sessions_per_principal": 5})
    async with serving(limited) as server, httpx2.AsyncClient(timeout=30) as http:
        mallory = await server.token("mallory", "catalog:read")
        for _ in range(5):
            assert (await open_session(http, server.url, mallory)).status_code == 200
        assert (await open_session(http, server.url, mallory)).status_code == 429
        quota = server.http.sessions
        assert quota is not None and quota.open_sessions("mallory") == 5
        await end_sessions(server.http.served)  # as an idle timeout or a closed transport ends them
        with anyio.fail_after(5):
            while True:
                if quota.open_sessions("mallory") == 0:
                    break
                await anyio.sleep(0.02)
        assert (await open_session(http, server.url, mallory)).status_code == 200


async def test_a_burst_of_concurrent_openings_stops_at_the_limit(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_sessions_per_principal": 5})
    async with serving(limited) as server, httpx2.AsyncClient(timeout=30) as http:
        mallory = await server.token("mallory", "catalog:read")
        statuses: list[int] = []

        async def open_one() -> None:
            statuses.append((await open_session(http, server.url, mallory)).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(open_one)
        assert sorted(statuses) == [200] * 5 + [429] * 15
        await still_answers(server.url, await server.token("alice"))


async def test_a_stateless_server_has_no_sessions_to_count(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_sessions_per_principal": 1})
    async with serving(limited, stateless=True) as server, httpx2.AsyncClient(timeout=30) as http:
        token = await server.token("alice")
        assert server.http.sessions is None
        for _ in range(3):
            assert (await open_session(http, server.url, token)).status_code == 200
        await still_answers(server.url, token)


# -- tasks ---------------------------------------------------------------------------------------


def task(title: str, **more: Any) -> dict[str, Any]:
    return {"title": title, "schedule": MANUAL, "pipeline": echo_pipeline(n=1)} | more


async def test_the_thousandth_task_is_stored_and_the_next_refused(settings: Settings) -> None:
    async with serving(settings) as server:
        service = server.http.served.current()
        assert service is not None
        alice = Principal("alice", frozenset(ALL.split(",")))
        for n in range(999):  # the service path of schedule_task, without 999 HTTP round trips
            await service.tasks.schedule_task(
                alice, title=f"t{n}", schedule=MANUAL, pipeline=echo_pipeline(n=n)
            )
        async with connect(server.url, await server.token("alice")) as client:
            await call_ok(client, "schedule_task", task("the thousandth"))
            refused = tool_error(await call_error(client, "schedule_task", task("one too many")))
            assert refused == (
                "task limit: principal 'alice' holds 1,000 active or paused tasks, the most allowed "
                "(ORCH_MAX_TASKS_PER_PRINCIPAL); cancel or delete one first"
            )
            refused = tool_error(
                await call_error(client, "schedule_task", task("keyed", idempotency_key="k1"))
            )
            assert refused.startswith("task limit:")
        await still_answers(server.url, await server.token("bob"))


async def test_paused_tasks_count_and_a_cancelled_one_makes_room(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_tasks_per_principal": 3})
    async with serving(limited) as server:
        async with (
            connect(server.url, await server.token("alice")) as alice,
            connect(server.url, await server.token("bob")) as bob,
        ):
            made = [await call_ok(alice, "schedule_task", task(f"t{n}")) for n in range(3)]
            await call_ok(alice, "pause_task", {"task_id": made[0]["id"]})
            assert "holds 3 active or paused tasks" in await call_error(alice, "schedule_task", task("4th"))
            await call_ok(bob, "schedule_task", task("bob's own"))  # another principal's quota
            await call_ok(alice, "cancel_task", {"task_id": made[1]["id"]})
            await call_ok(alice, "schedule_task", task("in its place"))
            await call_error(alice, "schedule_task", task("5th"))


async def test_a_completed_task_made_active_again_needs_room(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_tasks_per_principal": 1})
    async with serving(limited) as server, connect(server.url, await server.token("alice")) as alice:
        once = {"kind": "once", "expr": "2020-01-01T00:00:00Z"}
        done = await call_ok(alice, "schedule_task", task("once", schedule={"kind": "manual"}))
        await call_ok(alice, "cancel_task", {"task_id": done["id"]})
        only = await call_ok(alice, "schedule_task", task("the one"))
        assert only["status"] == "active"
        # A completed task: its once-time passed. Giving it a new schedule would make it active again.
        service = server.http.served.current()
        assert service is not None
        past = await service.tasks.store.update_task(done["id"], {"status": "completed"})
        assert past is not None
        changed = {"task_id": done["id"], "schedule": {"kind": "interval", "expr": "1h"}}
        assert tool_error(await call_error(alice, "update_task", changed)).startswith("task limit:")
        assert (await call_ok(alice, "get_task", {"task_id": done["id"]}))["status"] == "completed"
        await call_ok(alice, "delete_task", {"task_id": only["id"]})
        assert (await call_ok(alice, "update_task", changed))["status"] == "active"
        assert once  # a past once-time is refused at save, hence the detour above


# -- definition size -----------------------------------------------------------------------------


async def test_a_big_but_legal_definition_is_stored_and_a_larger_one_refused(settings: Settings) -> None:
    async with serving(settings) as server:
        async with connect(server.url, await server.token("alice")) as alice:
            legal = task("big", params={"blob": "x" * (250 * 1024)})
            size = definition_size(legal["pipeline"], legal["params"], None, None)
            assert 250 * 1024 < size <= 256 * 1024
            stored = await call_ok(alice, "schedule_task", legal)
            assert len(stored["params"]["blob"]) == 250 * 1024

            larger = task("bigger", params={"blob": "x" * (300 * 1024)})
            refused = tool_error(await call_error(alice, "schedule_task", larger))
            assert refused.startswith(
                "task definition too large: pipeline, params, output and on_failure take 307,"
            )
            assert "at most 262,144 (256 KiB) are allowed (ORCH_MAX_DEFINITION_BYTES)" in refused
            grown = {"task_id": stored["id"], "params": {"blob": "y" * (300 * 1024)}}
            assert tool_error(await call_error(alice, "update_task", grown)).startswith(
                "task definition too large"
            )
            on_failure = {"task_id": stored["id"], "on_failure": echo_pipeline(pad="z" * (10 * 1024))}
            assert tool_error(await call_error(alice, "update_task", on_failure)).startswith(
                "task definition too large"
            )
            assert (await call_ok(alice, "get_task", {"task_id": stored["id"]}))["params"] == legal["params"]


async def test_twenty_definitions_of_four_megabytes_are_refused_and_others_still_answered(
    settings: Settings,
) -> None:
    huge = task("huge", pipeline=echo_pipeline(data="x" * 3_900_000))
    assert len(json.dumps(huge)) < 4 * 1024 * 1024  # under the SDK's request body limit: ours refuses it
    async with serving(settings) as server:
        async with connect(server.url, await server.token("mallory")) as mallory:
            for _ in range(20):
                assert tool_error(await call_error(mallory, "schedule_task", huge)).startswith(
                    "task definition too large"
                )
            assert (await call_ok(mallory, "list_tasks", {}))["tasks"] == []
        await still_answers(server.url, await server.token("alice"))


# -- listen streams ------------------------------------------------------------------------------


async def test_listen_streams_stop_at_the_limit_per_principal(settings: Settings) -> None:
    limited = settings.model_copy(update={"max_listen_streams_per_principal": 2})
    modern = "2026-07-28"
    async with serving(limited) as server:
        async with (
            connect(server.url, await server.token("mallory"), modern) as mallory,
            connect(server.url, await server.token("alice"), modern) as alice,
            AsyncExitStack() as first,
            AsyncExitStack() as streams,
        ):
            await first.enter_async_context(mallory.listen(resource_subscriptions=["orchestrator://runs/x"]))
            await streams.enter_async_context(
                mallory.listen(resource_subscriptions=["orchestrator://runs/y"])
            )
            with pytest.raises(MCPError) as refused:
                async with mallory.listen(resource_subscriptions=["orchestrator://runs/z"]):
                    pass
            assert str(refused.value) == (
                "listen limit: principal 'mallory' may hold 2 open subscriptions/listen streams "
                "(ORCH_MAX_LISTEN_STREAMS_PER_PRINCIPAL); close one first"
            )
            async with alice.listen(resource_subscriptions=["orchestrator://runs/a"]):
                await still_answers(server.url, await server.token("bob"), mode=modern)
            await first.aclose()
            with anyio.fail_after(10):  # the server sees the stream closed a moment later
                while True:
                    try:
                        async with mallory.listen(resource_subscriptions=["orchestrator://runs/z"]):
                            break
                    except MCPError as error:
                        assert "listen limit" in str(error)
                        await anyio.sleep(0.05)

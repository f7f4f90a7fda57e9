"""Resource subscriptions to runs and their logs (both protocol generations) and logging/setLevel."""

from __future__ import annotations

import warnings
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.server.subscriptions import InMemorySubscriptionBus, ServerEvent
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from orchestrator_mcp.config import Settings
from orchestrator_mcp.engine.events import RunEvent
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.server import create_server
from orchestrator_mcp.server.subscriptions import OwnedUpdate, OwnerView, ResourceUpdates
from tests.conftest import call_ok

THREE_SLOW_STEPS = [{"id": f"s{i}", "uses": "core.sleep", "with": {"seconds": 0.3}} for i in range(3)]


async def no_run(run_id: str) -> None:
    return None


async def manual_task(client: Client, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    return await call_ok(
        client, "schedule_task", {"title": "watched", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )


async def test_a_legacy_session_hears_each_change_of_a_subscribed_run_and_its_log(settings: Settings) -> None:
    heard: list[tuple[float, str]] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            heard.append((anyio.current_time(), message.params.uri))

    async with Client(create_server(settings), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities is not None
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe is True
        task = await manual_task(client, THREE_SLOW_STEPS)
        run = await call_ok(client, "run_now", {"task_id": task["id"]})
        run_uri, log_uri = f"orchestrator://runs/{run['id']}", run["log_uri"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource(run_uri)
            await client.subscribe_resource(log_uri)
        await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})  # queued behind ours
        with anyio.fail_after(30):  # the last notices may trail the run's end by one interval
            while True:
                if all(sum(uri == heard_uri for _, heard_uri in heard) >= 3 for uri in (run_uri, log_uri)):
                    break
                await anyio.sleep(0.02)

    for uri in (run_uri, log_uri):
        times = [at for at, heard_uri in heard if heard_uri == uri]
        assert len(times) >= 3, heard  # three steps and the end, some possibly merged
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.2  # at most 4 per second per resource
    assert {uri for _, uri in heard} == {run_uri, log_uri}


async def test_a_2026_client_hears_a_run_through_subscriptions_listen(settings: Settings) -> None:
    async with Client(create_server(settings), mode="2026-07-28") as client:
        task = await manual_task(client, THREE_SLOW_STEPS)
        run = await call_ok(client, "run_now", {"task_id": task["id"]})
        run_uri = f"orchestrator://runs/{run['id']}"
        events: list[ServerEvent] = []
        async with client.listen(resource_subscriptions=[run_uri]) as subscription:
            assert subscription.honored.resource_subscriptions == [run_uri]
            with anyio.fail_after(10):
                async for event in subscription:
                    events.append(event)
                    status = (await call_ok(client, "get_run", {"run_id": run["id"]}))["status"]
                    if status == "succeeded":
                        break
    assert events
    assert all(getattr(event, "uri", None) == run_uri for event in events)


async def test_subscribing_to_a_run_that_does_not_exist_is_refused_but_any_other_uri_is_accepted(
    settings: Settings,
) -> None:
    async with Client(create_server(settings), mode="legacy") as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            with pytest.raises(MCPError, match="run 'run_missing' not found"):
                await client.subscribe_resource("orchestrator://runs/run_missing/log")
            assert await client.subscribe_resource("test://watched-resource") == types.EmptyResult()
            assert await client.unsubscribe_resource("test://watched-resource") == types.EmptyResult()
            assert await client.unsubscribe_resource("test://never-subscribed") == types.EmptyResult()


async def test_an_unsubscribed_session_hears_nothing_more(settings: Settings) -> None:
    heard: list[str] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            heard.append(message.params.uri)

    async with Client(create_server(settings), mode="legacy", message_handler=on_message) as client:
        task = await manual_task(client, THREE_SLOW_STEPS)
        first = await call_ok(client, "run_now", {"task_id": task["id"]})
        uri = f"orchestrator://runs/{first['id']}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.subscribe_resource(uri)
            await client.unsubscribe_resource(uri)
        await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})  # queued behind the first
        assert (await call_ok(client, "get_run", {"run_id": first["id"]}))["status"] == "succeeded"
    assert heard == []


async def test_a_stream_of_changes_is_thinned_to_a_notice_per_interval_and_the_last_change_is_told() -> None:
    bus = InMemorySubscriptionBus()
    seen: list[tuple[float, ServerEvent]] = []
    bus.subscribe(lambda event: seen.append((anyio.current_time(), event)))
    updates = ResourceUpdates(bus, interval=0.1)
    updates.streams = 1  # as while a subscriptions/listen stream is open

    async with anyio.create_task_group() as group:
        await group.start(updates.run, no_run)
        for step in range(20):  # 20 changes in 0.2 s
            updates.on_run_event(RunEvent("run_1", "alice", f"step {step}", step, 20))
            await anyio.sleep(0.01)
        updates.on_run_event(RunEvent("run_1", "alice", "run succeeded", 20, 20, final=True))
        ended = anyio.current_time()
        with anyio.fail_after(30):  # the last change is told, within an interval
            while True:
                if any(
                    at >= ended
                    for at, event in seen
                    if getattr(event, "uri", "") == "orchestrator://runs/run_1"
                ):
                    break
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    notices = [at for at, event in seen if getattr(event, "uri", "") == "orchestrator://runs/run_1"]
    assert 2 <= len(notices) <= 5
    assert min(later - earlier for earlier, later in zip(notices, notices[1:], strict=False)) >= 0.09
    assert notices[-1] >= ended
    assert len(seen) == 2 * len(notices)  # the log is told as often


async def test_with_nobody_listening_a_run_change_costs_nothing() -> None:
    bus = InMemorySubscriptionBus()
    seen: list[ServerEvent] = []
    bus.subscribe(seen.append)
    updates = ResourceUpdates(bus, interval=0.01)
    async with anyio.create_task_group() as group:
        await group.start(updates.run, no_run)
        updates.on_run_event(RunEvent("run_1", "alice", "run succeeded", 1, 1, final=True))
        await anyio.sleep(0.1)  # a negative check: ten intervals pass, and nothing may be told
        group.cancel_scope.cancel()
    assert seen == []


def test_a_principal_listening_hears_only_of_its_own_runs() -> None:
    bus = InMemorySubscriptionBus()
    reader = Principal("bob", frozenset({"runs:read"}))
    heard: list[ServerEvent] = []
    OwnerView(bus, reader).subscribe(heard.append)
    admin_heard: list[ServerEvent] = []
    OwnerView(bus, Principal("root")).subscribe(admin_heard.append)

    async def publish() -> None:
        for owner in ("alice", "bob"):
            await bus.publish(OwnedUpdate(uri=f"orchestrator://runs/{owner}_run", owner=owner))

    anyio.run(publish)
    assert [getattr(event, "uri", "") for event in heard] == ["orchestrator://runs/bob_run"]
    assert len(admin_heard) == 2


@pytest.mark.parametrize(("level", "expected"), [("warning", 0), ("info", 2), ("debug", 2)])
async def test_set_level_decides_whether_a_waited_run_reports_its_steps_as_log_notices(
    settings: Settings, level: types.LoggingLevel, expected: int
) -> None:
    notices: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        notices.append(params)

    async with Client(create_server(settings), mode="legacy", logging_callback=on_log) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            assert await client.set_logging_level(level) == types.EmptyResult()
        task = await manual_task(client, [{"id": "a", "uses": "core.noop"}, {"id": "b", "uses": "core.noop"}])
        await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
    assert len(notices) >= expected if expected else notices == []
    assert all(notice.level == "info" for notice in notices)

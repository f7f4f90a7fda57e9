"""The engine loop on a manual clock: fire times, misfires, overlaps and pauses, without waiting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import TextResourceContents

from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from tests.conftest import call_ok

START = datetime(2026, 3, 2, 8, 59, 30, tzinfo=UTC)
FIRST = START + timedelta(seconds=60)  # an interval task's first fire time
THREE_FIRES = {"kind": "cron", "expr": "0-2 9 * * *"}  # 09:00, 09:01, 09:02, then not before tomorrow
"""`core.sleep` naps on the manual clock too: a schedule that stops firing lets the last nap end
without firing again, so runs that overlap can be watched until every one of them has ended."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def timed_client(settings: Settings, clock: ManualClock) -> AsyncIterator[Client]:
    async with Client(create_server(settings, clock)) as connected:
        yield connected


async def runs_of(client: Client, task_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = (await call_ok(client, "list_runs", {"task_id": task_id, "limit": 200}))[
        "runs"
    ]
    return sorted(runs, key=lambda run: (run["scheduled_for"], run["status"]))


async def wait_until(
    client: Client, task_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    with anyio.fail_after(10):
        while True:
            runs = await runs_of(client, task_id)
            if done(runs):
                return runs
            await anyio.sleep(0.02)


def final(runs: list[dict[str, Any]]) -> bool:
    return all(run["status"] not in ("queued", "running") for run in runs)


def ended(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """`count` runs, all ended."""
    return lambda runs: len(runs) == count and final(runs)


async def schedule(
    client: Client, pipeline: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    arguments = {
        "title": "t",
        "schedule": {"kind": "interval", "expr": "1m"},
        "pipeline": pipeline or [{"id": "n", "uses": "core.noop"}],
    } | fields
    return await call_ok(client, "schedule_task", arguments)


async def test_an_interval_task_fires_exactly_at_its_fire_times(
    timed_client: Client, clock: ManualClock
) -> None:
    task = await schedule(timed_client)
    assert task["next_run_at"] == "2026-03-02T09:00:30Z"
    # A negative check: nothing moves the manual clock, so the engine, which has had 0.1 s to go
    # round its loop on this task, must not have fired it early.
    await anyio.sleep(0.1)
    assert await runs_of(timed_client, task["id"]) == []
    for count in (1, 2, 3):
        clock.advance(60)
        await wait_until(timed_client, task["id"], ended(count))
    runs = await runs_of(timed_client, task["id"])
    assert [run["scheduled_for"] for run in runs] == [
        "2026-03-02T09:00:30Z",
        "2026-03-02T09:01:30Z",
        "2026-03-02T09:02:30Z",
    ]
    assert all(run["status"] == "succeeded" and run["started_at"] == run["scheduled_for"] for run in runs)
    assert (await call_ok(timed_client, "get_task", {"task_id": task["id"]}))[
        "next_run_at"
    ] == "2026-03-02T09:03:30Z"


async def test_a_daily_interval_keeps_its_time_after_a_first_fire_the_dst_gap_moved(
    timed_client: Client, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 3, 7, 7, 30, tzinfo=UTC))  # Saturday 02:30 EST
    task = await schedule(
        timed_client, schedule={"kind": "interval", "expr": "1d", "timezone": "America/New_York"}
    )
    assert task["next_run_at"] == "2026-03-08T07:00:00Z"  # Sunday skips 02:00-03:00: 03:00 EDT
    clock.advance(23.5 * 3600)
    await wait_until(timed_client, task["id"], ended(1))
    clock.advance(23.5 * 3600)
    runs = await wait_until(timed_client, task["id"], ended(2))
    assert [run["scheduled_for"] for run in runs] == ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    assert (await call_ok(timed_client, "get_task", {"task_id": task["id"]}))[
        "next_run_at"
    ] == "2026-03-10T06:30:00Z"  # 02:30 EDT again


async def test_missed_fire_times_follow_the_misfire_policy(timed_client: Client, clock: ManualClock) -> None:
    task = await schedule(timed_client, policy={"misfire": "run_once"})
    clock.advance(60 * 10)  # ten fire times pass at once
    runs = await wait_until(timed_client, task["id"], ended(2))
    skipped, ran = runs
    assert skipped["status"] == "skipped" and "missed 9 fire times" in skipped["error"]["message"]
    assert ran["status"] == "succeeded" and ran["scheduled_for"] == "2026-03-02T09:09:30Z"


async def test_a_fire_while_the_previous_run_is_active_is_skipped(
    timed_client: Client, clock: ManualClock
) -> None:
    task = await schedule(timed_client, [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 90}}])
    clock.advance(60)
    await clock.sleeper_at(FIRST + timedelta(seconds=90))  # the first run naps past the next fire
    clock.advance(60)
    await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running", "skipped"]
    )
    clock.advance(30)  # the nap ends, before the third fire time
    runs = await wait_until(timed_client, task["id"], ended(2))
    assert [run["status"] for run in runs] == ["succeeded", "skipped"]
    assert "overlap policy skip" in runs[1]["error"]["message"]


def one_record_of(fires: int) -> Callable[[list[dict[str, Any]]], bool]:
    """One skipped run, standing for `fires` fire times."""
    return lambda runs: [run["skipped_fires"] for run in runs if run["status"] == "skipped"] == [fires]


async def test_skipped_fires_are_one_run_whose_fields_say_how_many_in_every_view(
    timed_client: Client, clock: ManualClock
) -> None:
    task = await schedule(
        timed_client,
        [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 45}}],
        schedule={"kind": "interval", "expr": "10s"},
    )
    first = START + timedelta(seconds=10)
    clock.advance(10)
    await clock.sleeper_at(first + timedelta(seconds=45))  # the run naps past the next fires
    for skipped in (1, 2, 3):
        clock.advance(10)
        await wait_until(timed_client, task["id"], one_record_of(skipped))
    listed = (await call_ok(timed_client, "list_runs", {"task_id": task["id"]}))["runs"]
    running, record = sorted(listed, key=lambda run: run["scheduled_for"])
    assert (running["status"], running["skipped_fires"], running["last_scheduled_for"]) == (
        "running",
        None,
        None,
    )
    assert (record["skipped_fires"], record["scheduled_for"], record["last_scheduled_for"]) == (
        3,
        "2026-03-02T08:59:50Z",
        "2026-03-02T09:00:10Z",
    )
    assert record["error"]["message"] == (
        "skipped 3 fire times from 2026-03-02T08:59:50Z to 2026-03-02T09:00:10Z: "
        "a run of this task was still active (overlap policy skip)"
    )
    fetched = await call_ok(timed_client, "get_run", {"run_id": record["id"]})
    assert fetched == record | {"steps": []}
    [content] = (await timed_client.read_resource(f"orchestrator://runs/{record['id']}")).contents
    assert isinstance(content, TextResourceContents)
    assert json.loads(content.text) == fetched
    clock.advance(10)  # one more fire is skipped, then the nap ends before the next: nothing is left running
    await wait_until(timed_client, task["id"], one_record_of(4))
    clock.advance(5)
    runs = await wait_until(timed_client, task["id"], final)
    assert [(run["status"], run["skipped_fires"]) for run in runs] == [("succeeded", None), ("skipped", 4)]


async def test_buffer_one_keeps_one_waiting_run(timed_client: Client, clock: ManualClock) -> None:
    task = await schedule(
        timed_client,
        [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 150}}],
        schedule=THREE_FIRES,
        policy={"overlap": "buffer_one"},
    )
    nine = datetime(2026, 3, 2, 9, tzinfo=UTC)
    clock.set(nine)
    await clock.sleeper_at(nine + timedelta(seconds=150))  # the first run naps past the other fires
    clock.advance(60)
    await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running", "queued"]
    )
    clock.advance(60)
    await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running", "queued", "skipped"]
    )
    clock.advance(30)  # the first nap ends: the waiting run starts its own
    await clock.sleeper_at(nine + timedelta(seconds=300))
    clock.advance(150)
    runs = await wait_until(timed_client, task["id"], ended(3))
    assert [run["status"] for run in runs] == ["succeeded", "succeeded", "skipped"]


async def test_allow_runs_fires_concurrently(timed_client: Client, clock: ManualClock) -> None:
    task = await schedule(
        timed_client,
        [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 600}}],
        policy={"overlap": "allow"},
    )
    clock.advance(60)
    await wait_until(timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running"])
    clock.advance(60)
    await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running", "running"]
    )


async def test_a_paused_task_does_not_fire_and_resumes_after_now(
    timed_client: Client, clock: ManualClock
) -> None:
    task = await schedule(timed_client)
    await call_ok(timed_client, "pause_task", {"task_id": task["id"]})
    clock.advance(60 * 5)
    # A negative check: five fire times have passed on the manual clock; in 0.2 s the engine has
    # gone round its loop at the new time, and a paused task must not have fired.
    await anyio.sleep(0.2)
    assert await runs_of(timed_client, task["id"]) == []
    resumed = await call_ok(timed_client, "resume_task", {"task_id": task["id"]})
    assert resumed["next_run_at"] == "2026-03-02T09:05:30Z"


async def test_a_once_task_completes_after_its_run(timed_client: Client, clock: ManualClock) -> None:
    task = await schedule(
        timed_client, schedule={"kind": "once", "expr": "2026-03-02T10:00:00", "timezone": "Europe/Paris"}
    )
    assert task["next_run_at"] == "2026-03-02T09:00:00Z"
    clock.advance(30)
    await wait_until(timed_client, task["id"], ended(1))
    done = await call_ok(timed_client, "get_task", {"task_id": task["id"]})
    assert done["status"] == "completed" and done["next_run_at"] is None and done["run_count"] == 1


async def test_pause_after_failures_pauses_the_task(timed_client: Client, clock: ManualClock) -> None:
    task = await schedule(
        timed_client, [{"id": "f", "uses": "core.fail"}], policy={"pause_after_failures": 2}
    )
    for count in (1, 2):
        clock.advance(60)
        await wait_until(timed_client, task["id"], ended(count))
    paused = await call_ok(timed_client, "get_task", {"task_id": task["id"]})
    assert paused["status"] == "paused" and paused["failure_count"] == 2


async def test_buffer_all_queues_every_fire_and_runs_them_in_turn(
    timed_client: Client, clock: ManualClock
) -> None:
    task = await schedule(
        timed_client,
        [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 150}}],
        schedule=THREE_FIRES,
        policy={"overlap": "buffer_all"},
    )
    nine = datetime(2026, 3, 2, 9, tzinfo=UTC)
    clock.set(nine)
    await clock.sleeper_at(nine + timedelta(seconds=150))  # the first run naps past the other fires
    clock.advance(60)
    await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running", "queued"]
    )
    clock.advance(60)
    await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running", "queued", "queued"]
    )
    clock.advance(30)
    for n in (2, 3):  # each queued run starts when the one before it ends, and naps in turn
        await clock.sleeper_at(nine + timedelta(seconds=150 * n))
        clock.advance(150)
    runs = await wait_until(timed_client, task["id"], ended(3))
    assert [run["status"] for run in runs] == ["succeeded"] * 3


async def test_cancel_other_cancels_the_active_run_and_starts_the_new_one(
    timed_client: Client, clock: ManualClock
) -> None:
    task = await schedule(
        timed_client,
        [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 600}}],
        policy={"overlap": "cancel_other"},
    )
    clock.advance(60)
    await wait_until(timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["running"])
    clock.advance(60)
    runs = await wait_until(
        timed_client, task["id"], lambda runs: [r["status"] for r in runs] == ["cancelled", "running"]
    )
    await call_ok(timed_client, "cancel_run", {"run_id": runs[1]["id"]})

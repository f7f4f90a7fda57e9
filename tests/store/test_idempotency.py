"""An idempotency key makes one record however many calls race with it, on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
from mcp import Client

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import IdempotencyRow, RunRow, TaskRow
from tests.conftest import call_ok, echo_pipeline

RACERS = 10
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def settings_for(database_url: str) -> Settings:
    return Settings(database_url=database_url, poll_interval_seconds=0.2, heartbeat_seconds=1)


async def test_ten_concurrent_schedule_task_calls_with_one_key_create_one_task(database_url: str) -> None:
    async with Client(create_server(settings_for(database_url))) as client:
        arguments = {
            "title": "once",
            "schedule": {"kind": "manual"},
            "pipeline": echo_pipeline(n=1),
            "idempotency_key": "same",
        }
        made: list[str] = []

        async def schedule() -> None:
            made.append((await call_ok(client, "schedule_task", arguments))["id"])

        async with anyio.create_task_group() as group:
            for _ in range(RACERS):
                group.start_soon(schedule)
        listed = await call_ok(client, "list_tasks", {})
        assert len(made) == RACERS and len(set(made)) == 1
        assert [task["id"] for task in listed["tasks"]] == made[:1]


async def test_ten_concurrent_run_now_calls_with_one_key_create_one_run(database_url: str) -> None:
    async with Client(create_server(settings_for(database_url))) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {"title": "t", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(n=1)},
        )
        made: list[str] = []

        async def run_now() -> None:
            arguments = {"task_id": task["id"], "idempotency_key": "same", "wait": True}
            made.append((await call_ok(client, "run_now", arguments))["id"])

        async with anyio.create_task_group() as group:
            for _ in range(RACERS):
                group.start_soon(run_now)
        runs = (await call_ok(client, "list_runs", {"task_id": task["id"]}))["runs"]
        assert len(made) == RACERS and len(set(made)) == 1
        assert [run["id"] for run in runs] == made[:1] and runs[0]["status"] == "succeeded"


def key(result_id: str, at: datetime = NOW) -> IdempotencyRow:
    return IdempotencyRow(owner="alice", tool="schedule_task", key="k", created_at=at, result_id=result_id)


def task_row(task_id: str) -> TaskRow:
    return TaskRow(
        id=task_id,
        owner="alice",
        title=task_id,
        status="active",
        schedule={"kind": "manual"},
        pipeline=echo_pipeline(n=1),
        params={},
        policy={},
        created_at=NOW,
        updated_at=NOW,
    )


async def test_a_key_holds_its_task_until_it_expires_or_the_task_is_gone(database_url: str) -> None:
    store = await SqlStore.open(database_url)
    try:
        fresh_after = NOW - timedelta(hours=24)
        assert await store.insert_task_once(task_row("task_a"), key("task_a"), fresh_after) == "task_a"
        assert await store.insert_task_once(task_row("task_b"), key("task_b"), fresh_after) == "task_a"
        assert await store.get_task("task_b") is None
        later = NOW + timedelta(hours=25)  # the key has expired: it is taken anew
        later_fresh = later - timedelta(hours=24)
        assert await store.insert_task_once(task_row("task_c"), key("task_c", later), later_fresh) == "task_c"
        await store.delete_task("task_c")  # its task is gone: the key is free again
        assert await store.insert_task_once(task_row("task_d"), key("task_d", later), later_fresh) == "task_d"
        stored = await store.list_tasks(None, None, None, 10, None)
        assert {task.id for task in stored} == {"task_a", "task_d"}
    finally:
        await store.close()


async def test_racing_inserts_of_runs_under_one_key_store_exactly_one(database_url: str) -> None:
    store = await SqlStore.open(database_url)
    try:
        await store.insert_task(task_row("task_a"))
        holders: list[str] = []

        async def insert(n: int) -> None:
            run = RunRow(
                id=f"run_{n}",
                task_id="task_a",
                owner="alice",
                task_title="t",
                trigger="manual",
                status="queued",
                fire_key=f"run_{n}",
                scheduled_for=NOW,
                not_before=NOW,
                queued_at=NOW,
                params={},
            )
            once = IdempotencyRow(owner="alice", tool="run_now", key="k", created_at=NOW, result_id=run.id)
            holders.append((await store.insert_run_once(run, once, NOW - timedelta(hours=24)))[0])

        async with anyio.create_task_group() as group:
            for n in range(RACERS):
                group.start_soon(insert, n)
        stored = await store.list_runs(None, "task_a", None, None, 100, None)
        assert len(set(holders)) == 1 and [run.id for run in stored] == holders[:1]
    finally:
        await store.close()

"""Fire precision: N no-op jobs due in the same second, on the orchestrator, a bare heap, APScheduler 3.11."""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from bench.common import (
    Counter,
    create_schema,
    insert_rows,
    next_whole_second,
    once_tasks,
    run_times,
    summary_ms,
    sync_engine,
    temp_database,
    utcnow,
    wait_for_count,
)
from orchestrator_mcp.clock import SystemClock
from orchestrator_mcp.collector import settle_after_start_up
from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from orchestrator_mcp.store.sql import TASKS

LEAD_SECONDS = 2.5
"""How far ahead the due second is when the tasks are inserted (the engine polls every second)."""


def in_process(
    database_url: str, max_concurrent_runs: int, catalog: Path | None = None
) -> AbstractAsyncContextManager[Client]:
    """The orchestrator in this process (create_server + the SDK's in-memory client), SystemClock,
    with the garbage collector set as `orchestrator-mcp serve` sets it; `catalog`: its catalog file."""
    settings = Settings(
        database_url=database_url,
        max_concurrent_runs=max_concurrent_runs,
        log_level="WARNING",
        catalog=catalog,
    )
    server = create_server(settings, SystemClock())
    settle_after_start_up()
    return Client(server)


async def orchestrator_fire(
    connect: Callable[[], AbstractAsyncContextManager[Client]],
    url: str,
    path: Path,
    count: int,
    limit_seconds: float = 120.0,
    counter: Counter | None = None,
) -> dict[str, Any]:
    """Insert `count` once-tasks due at the next whole second (after a lead), let the engine fire them.

    The server must already hold the database `url` (schema made). Figures come from the run records:
    - `claim lateness`: started_at - scheduled_for (started_at is set when the run is claimed),
    - `step lateness`: the first step's started_at - scheduled_for (when the run really executes),
    - `all_stored_s`: last finished_at - the due second (all `count` runs succeeded and stored).
    """
    engine = sync_engine(path)
    try:
        async with connect() as client:
            await client.call_tool("server_status", {})  # the engine is up
            due = next_whole_second(LEAD_SECONDS)
            rows = once_tasks(count, due, utcnow())
            inserted = time.perf_counter()
            await anyio.to_thread.run_sync(insert_rows, engine, TASKS, rows)
            insert_s = time.perf_counter() - inserted
            if counter is not None:
                counter.install()
            try:
                seen = await wait_for_count(path, "succeeded", count, limit_seconds)
            finally:
                if counter is not None:
                    counter.remove()
        runs = [run for run in run_times(engine) if run["scheduled_for"] == due]
    finally:
        engine.dispose()
    succeeded = [run for run in runs if run["status"] == "succeeded"]
    claim = [(run["started_at"] - due).total_seconds() for run in succeeded if run["started_at"]]
    step = [(run["step_started_at"] - due).total_seconds() for run in succeeded if run["step_started_at"]]
    finished = [(run["finished_at"] - due).total_seconds() for run in succeeded if run["finished_at"]]
    result: dict[str, Any] = {
        "jobs": count,
        "succeeded": len(succeeded),
        "insert_tasks_s": round(insert_s, 3),
        "claim_lateness": summary_ms(claim),
        "step_lateness": summary_ms(step),
        "finish_lateness": summary_ms(finished),
        "all_stored_s": round(max(finished), 3) if len(succeeded) == count else None,
        "seen_all_after_s": None if seen is None else round(seen - due.timestamp(), 3),
    }
    if counter is not None and succeeded:
        result["db_transactions_per_run"] = round(counter.begins / len(succeeded), 2)
        result["db_write_transactions_per_run"] = round(counter.writes / len(succeeded), 2)
        result["db_statements_per_run"] = round(counter.statements / len(succeeded), 2)
    return result


async def orchestrator_in_process(count: int) -> dict[str, Any]:
    with temp_database("fire") as (url, path):
        await create_schema(url)
        counter = Counter()
        return await orchestrator_fire(
            lambda: in_process(url, max(count, 8)), url, path, count, counter=counter
        )


# -- the floor: an asyncio loop over a heap of fire times ---------------------------------------


async def heap_fire(count: int) -> dict[str, Any]:
    """A bare asyncio scheduler: a heap of (fire time, job), a sleep to the earliest, a task per job."""
    due = next_whole_second(1.0).timestamp()
    late: list[float] = []
    done = asyncio.Event()

    async def job(scheduled: float) -> None:
        late.append(time.time() - scheduled)
        if len(late) == count:
            done.set()

    heap = [(due, i) for i in range(count)]
    heapq.heapify(heap)
    tasks = []
    while heap:
        delay = heap[0][0] - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.time()
        while heap and heap[0][0] <= now:
            scheduled, _ = heapq.heappop(heap)
            tasks.append(asyncio.create_task(job(scheduled)))
    await done.wait()
    return {"jobs": count, "lateness": summary_ms(late), "all_done_s": round(max(late), 3)}


# -- APScheduler 3.11, in memory ----------------------------------------------------------------


async def apscheduler_fire(count: int) -> dict[str, Any]:
    """AsyncIOScheduler with `count` DateTrigger jobs due in the same second (misfire grace 1 h)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.date import DateTrigger

    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    due = next_whole_second(1.5)
    due_ts = due.timestamp()
    late: list[float] = []
    done = asyncio.Event()

    async def job() -> None:
        late.append(time.time() - due_ts)
        if len(late) == count:
            done.set()

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()
    try:
        for i in range(count):
            scheduler.add_job(job, DateTrigger(run_date=due), id=f"job{i}", misfire_grace_time=3600)
        await asyncio.wait_for(done.wait(), 60)
    finally:
        scheduler.shutdown(wait=False)
    return {"jobs": count, "lateness": summary_ms(late), "all_done_s": round(max(late), 3)}


async def run(quick: bool) -> dict[str, Any]:
    count = 1000
    return {
        "orchestrator": await orchestrator_in_process(count),
        "asyncio_heap": await heap_fire(count),
        "apscheduler_3_11": await apscheduler_fire(count),
    }

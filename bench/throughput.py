"""Throughput: no-op runs stored as succeeded per second, sustained, from a backlog of queued runs.

The backlog is what `run_now` inserts (manual runs, queued and ready) on tasks whose overlap policy is
`allow`, so exclusivity never holds a run back: the figure is the engine's own pace (claim, execute,
record), counted from `finished_at` in the database over a window that starts after a warm-up second.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import func, select

from bench.common import (
    Counter,
    count_status,
    create_schema,
    insert_rows,
    manual_backlog,
    sync_engine,
    temp_database,
    utcnow,
)
from bench.fire import in_process
from orchestrator_mcp.store.sql import RUNS, TASKS

TASKS_COUNT = 100
WARMUP_SECONDS = 1.0
BACKLOG_PER_SECOND = 4_000
"""Queued runs inserted per second measured: the target pace (`backlog_left` 0 means it ran dry)."""


async def measure(duration: float, max_concurrent_runs: int) -> dict[str, Any]:
    with temp_database("throughput") as (url, path):
        await create_schema(url)
        engine = sync_engine(path)
        try:
            now = utcnow()
            backlog = int(BACKLOG_PER_SECOND * (duration + WARMUP_SECONDS + 1))
            tasks, runs = manual_backlog(TASKS_COUNT, backlog, now)
            insert_rows(engine, TASKS, tasks)
            insert_rows(engine, RUNS, runs)
            counter = Counter()
            async with in_process(url, max_concurrent_runs) as client:
                await client.call_tool("server_status", {})
                started = utcnow()
                counter.install()
                await anyio.sleep(WARMUP_SECONDS + duration)
                counter.remove()
                left = await anyio.to_thread.run_sync(count_status, path, "queued")
            window_start = started + timedelta(seconds=WARMUP_SECONDS)
            window_end = window_start + timedelta(seconds=duration)
            with engine.connect() as conn:
                stmt = select(func.count()).where(
                    RUNS.c.status == "succeeded",
                    RUNS.c.finished_at >= window_start,
                    RUNS.c.finished_at < window_end,
                )
                in_window = int(conn.execute(stmt).scalar_one())
                since_start = select(func.count()).where(
                    RUNS.c.status == "succeeded", RUNS.c.finished_at >= started
                )
                total = int(conn.execute(since_start).scalar_one())
        finally:
            engine.dispose()
    return {
        "seconds": duration,
        "max_concurrent_runs": max_concurrent_runs,
        "backlog": len(runs),
        "backlog_left": left,
        "succeeded_in_window": in_window,
        "runs_per_second": round(in_window / duration, 1),
        "db_transactions_per_run": round(counter.begins / total, 2) if total else None,
        "db_write_transactions_per_run": round(counter.writes / total, 2) if total else None,
        "db_statements_per_run": round(counter.statements / total, 2) if total else None,
    }


async def run(quick: bool) -> dict[str, Any]:
    duration = 5.0 if quick else 30.0
    started = time.perf_counter()
    results: dict[str, Any] = {
        "default_8": await measure(duration, 8),
        "concurrency_100": await measure(duration, 100),
    }
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    return results

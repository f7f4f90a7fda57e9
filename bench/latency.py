"""Tool latency over stdio: `get_task` and `list_runs` (limit 50) with N runs stored.

The server is `python -m orchestrator_mcp serve` in a subprocess, driven by the SDK client.
`list_catalog` of the core server (no database read) is the floor of a tool call over stdio (`ping`
is not offered by the 2026 protocol the client negotiates). HTTP is not built yet: "not available".
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import (
    create_schema,
    finished_runs,
    insert_rows,
    stdio_server,
    summary_ms,
    sync_engine,
    task_template,
    temp_database,
    utcnow,
)
from orchestrator_mcp.store.sql import RUNS, TASKS

TASKS_COUNT = 1000


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    for _ in range(5):  # warm-up
        await call()
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - started)
    return summary_ms(durations)


async def measure(runs: int, repeat: int) -> dict[str, Any]:
    with temp_database("latency") as (url, path):
        await create_schema(url)
        engine = sync_engine(path)
        try:
            now = utcnow()
            tasks = []
            for _ in range(TASKS_COUNT):
                task = task_template({"kind": "interval", "expr": "1d"}, now)
                tasks.append(task)
                task["id"] = task["id"] + f"{len(tasks):04d}"
            insert_rows(engine, TASKS, tasks)
            insert_rows(engine, RUNS, finished_runs(tasks, runs, now))
        finally:
            engine.dispose()
        rng = random.Random(7)
        ids = [task["id"] for task in tasks]
        one_task = ids[0]
        async with stdio_server(url) as client:

            async def get_task() -> Any:
                result = await client.call_tool("get_task", {"task_id": rng.choice(ids)})
                assert not result.is_error
                return result

            async def list_catalog() -> Any:
                return await client.call_tool("list_catalog", {"server": "core"})

            async def list_runs() -> Any:
                return await client.call_tool("list_runs", {"limit": 50})

            async def list_task_runs() -> Any:
                return await client.call_tool("list_runs", {"task_id": one_task, "limit": 50})

            results = {
                "list_catalog_no_db": await timed(list_catalog, repeat),
                "get_task": await timed(get_task, repeat),
                "list_runs_limit_50": await timed(list_runs, max(repeat // 2, 20)),
                "list_runs_of_a_task_limit_50": await timed(list_task_runs, max(repeat // 2, 20)),
            }
    return {"runs": runs, "transport": "stdio", **results, "http": "not available (no HTTP transport yet)"}


async def run(quick: bool) -> dict[str, Any]:
    return await measure(10_000 if quick else 100_000, 100 if quick else 300)

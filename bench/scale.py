"""Scale: N active tasks in the database; start-up of `orchestrator_mcp serve`, its memory, fire precision.

The N tasks are hourly intervals whose next fire is 10 min to 24 h away (none fires during the run),
inserted with bulk SQL. Start-up is timed from spawning the subprocess until the first tool call
(`server_status`) is answered over stdio.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client

from bench.common import (
    create_schema,
    idle_tasks,
    insert_rows,
    memory_mb,
    server_pid,
    stdio_server,
    sync_engine,
    temp_database,
    utcnow,
)
from bench.fire import orchestrator_fire
from orchestrator_mcp.store.sql import TASKS


async def startup(url: str) -> dict[str, Any]:
    """Spawn the server, time the first answered tool call, read its memory."""
    started = time.perf_counter()
    async with stdio_server(url) as client:
        connected = time.perf_counter()
        await client.call_tool("server_status", {})
        answered = time.perf_counter()
        pid = server_pid()
        memory = memory_mb(pid) if pid else {}
    return {
        "startup_s": round(answered - started, 3),
        "initialize_s": round(connected - started, 3),
        "rss_mb": memory.get("VmRSS"),
    }


async def measure(tasks: int, due: int) -> dict[str, Any]:
    with temp_database("scale") as (url, path):
        await create_schema(url)
        engine = sync_engine(path)
        try:
            inserted = time.perf_counter()
            insert_rows(engine, TASKS, idle_tasks(tasks, utcnow()))
            insert_s = time.perf_counter() - inserted
        finally:
            engine.dispose()
        first = await startup(url)
        memory: dict[str, float] = {}

        @asynccontextmanager
        async def connect() -> AsyncIterator[Client]:
            async with stdio_server(url, ORCH_MAX_CONCURRENT_RUNS=str(due)) as client:
                yield client
                pid = server_pid()
                if pid:
                    memory.update(memory_mb(pid))

        fire = await orchestrator_fire(connect, url, path, due)
    return {
        "tasks": tasks,
        "bulk_insert_s": round(insert_s, 2),
        **first,
        "fire": fire,
        "rss_after_fire_mb": memory.get("VmRSS"),
        "peak_rss_mb": memory.get("VmHWM"),
    }


async def run(quick: bool) -> dict[str, Any]:
    empty = await measure(0, 1000) if not quick else None
    with temp_database("empty") as (url, _):
        await create_schema(url)
        baseline = await startup(url)
    return {
        "empty_db": baseline,
        "empty_db_fire": None if empty is None else empty["fire"],
        "loaded": await measure(10_000 if quick else 100_000, 1000),
    }

"""Tool latency over stdio and over HTTP: `get_task` and `list_runs` (limit 50) with N runs stored.

The server is `python -m orchestrator_mcp serve` in a subprocess (stdio, or `--transport http` with a
bearer token on a loopback port), driven by the SDK client. `list_catalog` of the core server (no
database read) is the floor of a tool call over each transport (`ping` is not offered by the 2026
protocol the client negotiates).

`list_runs` is also timed as a bare `tools/call` request (`ClientSession.send_request`), which
skips what `Client.call_tool` adds: its `jsonschema` validation of the result against the tool's
output schema. The difference is the client's share of the figure; the rest is the server's and
the transport's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import Client
from mcp_types import CallToolRequest, CallToolRequestParams, CallToolResult

from bench.common import (
    create_schema,
    finished_runs,
    http_server,
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


async def timed(call: Callable[[], Awaitable[CallToolResult]], repeat: int) -> dict[str, float]:
    """Latency of `call`; every answer must be a result, never an error (which may come back faster)."""
    for _ in range(5):  # warm-up
        await call()
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await call()
        durations.append(time.perf_counter() - started)
        assert not result.is_error, result
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
        ids = [task["id"] for task in tasks]
        async with stdio_server(url) as client:
            stdio = await calls(client, ids, repeat)
        async with http_server(url) as client:
            http = await calls(client, ids, repeat)
        async with http_server(url, auth=False) as client:
            http_no_auth = await calls(client, ids, repeat)
    return {"runs": runs, "stdio": stdio, "http": http, "http_no_auth": http_no_auth}


async def calls(client: Client, ids: list[str], repeat: int) -> dict[str, Any]:
    """The latency of each measured call through `client`."""
    rng = random.Random(7)
    one_task = ids[0]

    async def get_task() -> CallToolResult:
        return await client.call_tool("get_task", {"task_id": rng.choice(ids)})

    async def list_catalog() -> CallToolResult:
        return await client.call_tool("list_catalog", {"server": "core"})

    async def list_runs() -> CallToolResult:
        return await client.call_tool("list_runs", {"limit": 50})

    async def list_task_runs() -> CallToolResult:
        return await client.call_tool("list_runs", {"task_id": one_task, "limit": 50})

    unvalidated = CallToolRequest(params=CallToolRequestParams(name="list_runs", arguments={"limit": 50}))

    async def list_runs_unvalidated() -> CallToolResult:
        return await client.session.send_request(unvalidated, CallToolResult)

    return {
        "list_catalog_no_db": await timed(list_catalog, repeat),
        "get_task": await timed(get_task, repeat),
        "list_runs_limit_50": await timed(list_runs, max(repeat // 2, 20)),
        "list_runs_of_a_task_limit_50": await timed(list_task_runs, max(repeat // 2, 20)),
        "list_runs_limit_50_unvalidated": await timed(list_runs_unvalidated, max(repeat // 2, 20)),
    }


async def run(quick: bool) -> dict[str, Any]:
    return await measure(10_000 if quick else 100_000, 100 if quick else 300)

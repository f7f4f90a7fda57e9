"""Step overhead: a 10-step `core.noop` pipeline via run_now(wait) vs the same 10 direct SDK calls.

Both go to the same in-process core server (`tool_catalog.create_core_server()`); the orchestrator is
in this process too (create_server + the SDK's in-memory client), so neither side pays for stdio.
Downstream stdio tool servers come later: their own round trip will add to both sides alike.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

import anyio
from mcp import Client

from bench.common import create_schema, temp_database
from bench.fire import in_process
from tool_catalog import create_core_server

STEPS = 10


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def direct(repeat: int) -> list[float]:
    durations = []
    async with Client(create_core_server()) as client:
        for _ in range(3):
            await client.call_tool("noop", {})
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(STEPS):
                result = await client.call_tool("noop", {})
                assert not result.is_error
            durations.append(time.perf_counter() - started)
    return durations


async def orchestrated(repeat: int) -> tuple[list[float], list[float]]:
    """(run_now wait round trips, the runs' own started->finished durations), in seconds."""
    calls: list[float] = []
    runs: list[float] = []
    with temp_database("overhead") as (url, _):
        await create_schema(url)
        async with in_process(url, 8) as client:
            created = await client.call_tool(
                "schedule_task",
                {
                    "title": "ten noops",
                    "schedule": {"kind": "manual"},
                    "pipeline": [{"id": f"s{i}", "uses": "core.noop"} for i in range(STEPS)],
                },
            )
            assert created.structured_content is not None
            task_id = created.structured_content["id"]
            for round_ in range(repeat + 2):
                started = time.perf_counter()
                result = await client.call_tool("run_now", {"task_id": task_id, "wait": True})
                elapsed = time.perf_counter() - started
                run = result.structured_content
                assert run is not None and run["status"] == "succeeded", run
                if round_ >= 2:  # warm-up
                    calls.append(elapsed)
                    runs.append((_moment(run["finished_at"]) - _moment(run["started_at"])).total_seconds())
    return calls, runs


async def sdk_calls_per_second(mode: str, calls: int) -> dict[str, float]:
    """The ceiling any run rate meets: `core.noop` calls/s through `mcp.Client`, nothing else running."""
    async with Client(create_core_server(), mode=mode) as client:
        for _ in range(20):
            await client.call_tool("noop", {})
        started = time.perf_counter()
        for _ in range(calls):
            await client.call_tool("noop", {})
        sequential = calls / (time.perf_counter() - started)
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(calls):
                group.start_soon(client.call_tool, "noop", {})
        concurrent = calls / (time.perf_counter() - started)
    return {"sequential": round(sequential), "concurrent": round(concurrent)}


async def run(quick: bool) -> dict[str, Any]:
    repeat = 10 if quick else 40
    direct_s = statistics.median(await direct(repeat))
    calls, runs = await orchestrated(repeat)
    call_s, run_s = statistics.median(calls), statistics.median(runs)
    return {
        "steps": STEPS,
        "direct_10_calls_ms": round(direct_s * 1000, 2),
        "run_now_wait_ms": round(call_s * 1000, 2),
        "run_duration_ms": round(run_s * 1000, 2),
        "overhead_per_step_ms": round((call_s - direct_s) / STEPS * 1000, 2),
        "overhead_per_step_in_run_ms": round((run_s - direct_s) / STEPS * 1000, 2),
        "sdk_calls_per_s": {
            "2025-11-25": await sdk_calls_per_second("legacy", 500 if quick else 2000),
            "2026-07-28": await sdk_calls_per_second("2026-07-28", 500 if quick else 2000),
        },
        "note": "in-process core server",
    }

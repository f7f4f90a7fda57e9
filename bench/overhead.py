"""Step overhead: a 10-step pipeline calling a downstream stdio MCP server, via run_now(wait), vs the
same 10 calls made directly with the SDK's client to the same kind of server.

The downstream server is `bench/downstream.py` (one `noop` tool), a process of its own over stdio on
both sides: the orchestrator reaches it through its catalog file, the direct side with `mcp.Client`.
Each round makes the 10 direct calls, then the run; the overhead per step is the median over rounds
of (run - direct calls) / 10.
The orchestrator runs in this process (create_server + the SDK's in-memory client), so `run_now`
itself pays no transport. Beside it: the same pipeline of 10 built-in `core.noop` steps, which is the
orchestrator's own cost per step with no tool round trip at all.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from bench.common import create_schema, temp_database
from bench.fire import in_process

STEPS = 10
DOWNSTREAM = StdioServerParameters(
    command=sys.executable, args=[str(Path(__file__).with_name("downstream.py"))]
)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def ten_direct_calls(client: Client) -> float:
    """Seconds taken by 10 sequential `noop` calls through the SDK client."""
    started = time.perf_counter()
    for _ in range(STEPS):
        result = await client.call_tool("noop", {})
        assert not result.is_error
    return time.perf_counter() - started


async def ten_step_task(client: Client, uses: str) -> str:
    """A manual task whose pipeline is 10 steps calling `uses`; returns its id."""
    created = await client.call_tool(
        "schedule_task",
        {
            "title": f"ten {uses}",
            "schedule": {"kind": "manual"},
            "pipeline": [{"id": f"s{i}", "uses": uses} for i in range(STEPS)],
        },
    )
    assert created.structured_content is not None, created
    task_id: str = created.structured_content["id"]
    return task_id


async def run_once(client: Client, task_id: str) -> tuple[float, float]:
    """(the run_now wait round trip, the run's own started->finished duration), in seconds."""
    started = time.perf_counter()
    result = await client.call_tool("run_now", {"task_id": task_id, "wait": True})
    elapsed = time.perf_counter() - started
    run = result.structured_content
    assert run is not None and run["status"] == "succeeded", run
    return elapsed, (_moment(run["finished_at"]) - _moment(run["started_at"])).total_seconds()


async def measure(rounds: int) -> dict[str, list[float]]:
    """Rounds of: 10 direct calls, a run of 10 downstream steps, a run of 10 built-in steps.

    Alternating them in each round makes the machine's drift (other load, clock speed) touch both
    sides alike; the per-round differences are what the overhead figures are made of."""
    figures: dict[str, list[float]] = {"direct": [], "wait": [], "run": [], "builtin": []}
    with temp_database("overhead") as (url, path):
        catalog = path.with_name("catalog.json")
        server = {"command": DOWNSTREAM.command, "args": DOWNSTREAM.args}
        catalog.write_text(json.dumps({"mcpServers": {"bench": server}}))
        await create_schema(url)
        async with Client(DOWNSTREAM) as direct, in_process(url, 8, catalog) as client:
            downstream = await ten_step_task(client, "bench.noop")
            builtin = await ten_step_task(client, "core.noop")
            for round_ in range(rounds + 3):
                direct_s = await ten_direct_calls(direct)
                wait_s, run_s = await run_once(client, downstream)
                _, builtin_s = await run_once(client, builtin)
                if round_ >= 3:  # warm-up
                    for name, value in zip(figures, (direct_s, wait_s, run_s, builtin_s), strict=True):
                        figures[name].append(value)
    return figures


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def run(quick: bool) -> dict[str, Any]:
    figures = await measure(20 if quick else 100)
    direct, median = figures["direct"], statistics.median

    def per_step(side: str) -> float:
        return _ms(median(value - base for value, base in zip(figures[side], direct, strict=True)) / STEPS)

    return {
        "steps": STEPS,
        "rounds": len(direct),
        "direct_10_calls_ms": _ms(median(direct)),
        "run_now_wait_ms": _ms(median(figures["wait"])),
        "run_duration_ms": _ms(median(figures["run"])),
        "overhead_per_step_ms": per_step("wait"),
        "overhead_per_step_in_run_ms": per_step("run"),
        "builtin_run_duration_ms": _ms(median(figures["builtin"])),
        "note": "downstream stdio server (bench/downstream.py) on both sides, alternated per round",
    }

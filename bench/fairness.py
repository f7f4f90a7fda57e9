"""Fair share: how long one principal's `run_now` waits for a slot while another floods the queue.

The orchestrator runs in this process (as in `bench/fire.py`), `ORCH_MAX_CONCURRENT_RUNS`=8, on a
fresh SQLite file. The flooding principal, `alice`, has a task at priority 5 whose runs nap
(`core.sleep`, 1 s) and a backlog of queued runs, topped up before each trial so that it always
holds every slot with more waiting. The other principal, `local` (the in-process client), has a
manual task at the default priority 3 with one `core.noop` step. Each trial waits a random part of a
nap, calls `run_now` on that task, and reads its start latency from the record:
`started_at - queued_at`. A trial gives up after `GIVE_UP_SECONDS` (the latency is then at least
that, and counted as such).

`python -m bench.fairness [--quick] [--label NAME] [--output FILE]`, or `python -m bench --only
fairness`. The same file runs against an older checkout of the package (put this file's `bench/`
beside it) to measure before and after in one session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from bench.common import (
    create_schema,
    insert_rows,
    queued_runs,
    summary_ms,
    sync_engine,
    task_template,
    temp_database,
    utcnow,
)
from bench.fire import in_process
from orchestrator_mcp.store.sql import RUNS, TASKS

SLOTS = 8
NAP_SECONDS = 1.0
BACKLOG = 80
"""Alice's queued runs at the start of each trial: ten naps' worth of every slot."""
GIVE_UP_SECONDS = 30.0


def _count(path: Path, sql: str, *args: Any) -> int:
    with sqlite3.connect(path, timeout=30) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _start_latency(path: Path, run_id: str) -> float | None:
    """`started_at - queued_at` of a run in seconds, or None while it has not started."""
    with sqlite3.connect(path, timeout=30) as conn:
        row = conn.execute("SELECT queued_at, started_at FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row[1] is None:
        return None
    return (datetime.fromisoformat(row[1]) - datetime.fromisoformat(row[0])).total_seconds()


async def _wait_running(path: Path, owner: str, count: int) -> None:
    sql = "SELECT count(*) FROM runs WHERE owner = ? AND status = 'running'"
    with anyio.fail_after(GIVE_UP_SECONDS):
        while True:
            if await anyio.to_thread.run_sync(_count, path, sql, owner) >= count:
                return
            await anyio.sleep(0.02)


async def measure(trials: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    latencies: list[float] = []
    gave_up = 0
    with temp_database("fairness") as (url, path):
        await create_schema(url)
        engine = sync_engine(path)
        now = utcnow()
        flood = task_template({"kind": "manual"}, now, {"priority": 5, "overlap": "allow"})
        flood.update(
            owner="alice",
            title="flood",
            pipeline=[{"id": "nap", "uses": "core.sleep", "with": {"seconds": NAP_SECONDS}}],
        )
        insert_rows(engine, TASKS, [flood])
        async with in_process(url, SLOTS) as client:
            task = await _call(
                client,
                "schedule_task",
                {
                    "title": "single",
                    "schedule": {"kind": "manual"},
                    "pipeline": [{"id": "n", "uses": "core.noop"}],
                },
            )
            for _ in range(trials):
                queued = await anyio.to_thread.run_sync(
                    _count, path, "SELECT count(*) FROM runs WHERE owner = 'alice' AND status = 'queued'"
                )
                top_up = queued_runs(flood, max(BACKLOG - queued, 0), utcnow())
                await anyio.to_thread.run_sync(insert_rows, engine, RUNS, top_up)
                await _wait_running(path, "alice", SLOTS)
                await anyio.sleep(rng.uniform(0, NAP_SECONDS))
                run = await _call(client, "run_now", {"task_id": task["id"]})
                started = time.perf_counter()
                latency: float | None = None
                while latency is None and time.perf_counter() - started < GIVE_UP_SECONDS:
                    await anyio.sleep(0.01)
                    latency = await anyio.to_thread.run_sync(_start_latency, path, run["id"])
                if latency is None:
                    gave_up += 1
                latencies.append(GIVE_UP_SECONDS if latency is None else latency)
        engine.dispose()
    return {
        "slots": SLOTS,
        "nap_s": NAP_SECONDS,
        "backlog": BACKLOG,
        "trials": trials,
        "gave_up": gave_up,
        "start_latency": summary_ms(latencies),
        "start_latencies_s": [round(value, 3) for value in latencies],
    }


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


async def run(quick: bool) -> dict[str, Any]:
    return await measure(3 if quick else 8)


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 trials instead of 8")
    parser.add_argument("--label", default="", help="a name for this run in the JSON (e.g. before, after)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results-fairness.json"))
    args = parser.parse_args()
    results = {
        "label": args.label,
        "when": utcnow().isoformat(timespec="seconds"),
        **asyncio.run(run(args.quick)),
    }
    runs = json.loads(args.output.read_text()) if args.output.exists() else []
    args.output.write_text(json.dumps([*runs, results], indent=2) + "\n")
    latency = results["start_latency"]
    print(
        f"{args.label or 'this code'}: run_now start latency behind a priority-5 flood of {SLOTS} slots: "
        f"p50 {latency['p50_ms']:.0f} ms, max {latency['max_ms']:.0f} ms over {results['trials']} trials "
        f"({results['gave_up']} gave up at {GIVE_UP_SECONDS:.0f} s); appended to {args.output}",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())

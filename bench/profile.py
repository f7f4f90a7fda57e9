"""`python -m bench.profile [--seconds N] [--html FILE]`: where a no-op run's time goes.

Drains a backlog of queued no-op runs (as bench.throughput does, 8 concurrent runs) for N seconds and
reports: wall time and call count per SqlStore method (each store call is one transaction), the
transactions and statements per run, and, when pyinstrument is installed (`pip install pyinstrument`;
not a project dependency), a statistical profile of the whole process.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from bench.common import (
    Counter,
    create_schema,
    insert_rows,
    queued_runs,
    sync_engine,
    task_template,
    temp_database,
    utcnow,
)
from bench.fire import in_process
from orchestrator_mcp.store.sql import RUNS, TASKS, SqlStore


class StoreTimer:
    """Wraps every coroutine method of SqlStore to add up its wall time (lock wait included)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._originals: dict[str, Any] = {}

    def install(self) -> None:
        for name, method in inspect.getmembers(SqlStore, inspect.iscoroutinefunction):
            if name.startswith("__"):
                continue
            self._originals[name] = method
            setattr(SqlStore, name, self._wrap(name, method))

    def remove(self) -> None:
        for name, method in self._originals.items():
            setattr(SqlStore, name, method)

    def _wrap(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


async def drain(seconds: float, profiler: Any) -> dict[str, Any]:
    timer = StoreTimer()
    counter = Counter()
    with temp_database("profile") as (url, path):
        await create_schema(url)
        engine = sync_engine(path)
        now = utcnow()
        task = task_template({"kind": "manual"}, now, {"overlap": "allow"})
        insert_rows(engine, TASKS, [task])
        insert_rows(engine, RUNS, queued_runs(task, int(seconds * 2_500), now))
        timer.install()
        try:
            async with in_process(url, 8) as client:
                await client.call_tool("server_status", {})
                counter.install()
                if profiler is not None:
                    profiler.start()
                await anyio.sleep(seconds)
                if profiler is not None:
                    profiler.stop()
                counter.remove()
        finally:
            timer.remove()
        with engine.connect() as conn:
            done = conn.exec_driver_sql("SELECT count(*) FROM runs WHERE status = 'succeeded'").scalar_one()
        engine.dispose()
    runs = max(int(done), 1)
    methods = sorted(timer.seconds, key=lambda name: -timer.seconds[name])
    return {
        "seconds": seconds,
        "runs_succeeded": done,
        "transactions_per_run": round(counter.begins / runs, 2),
        "write_transactions_per_run": round(counter.writes / runs, 2),
        "statements_per_run": round(counter.statements / runs, 2),
        "store_calls": {
            name: {
                "calls_per_run": round(timer.calls[name] / runs, 2),
                "ms_per_call": round(timer.seconds[name] / timer.calls[name] * 1000, 3),
                "total_s": round(timer.seconds[name], 2),
            }
            for name in methods
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args()
    profiler: Any = None
    try:
        pyinstrument = importlib.import_module("pyinstrument")
        profiler = pyinstrument.Profiler(interval=0.0005, async_mode="disabled")
    except ImportError:
        print("pyinstrument is not installed: store timings only")
    report = asyncio.run(drain(args.seconds, profiler))
    print(f"{report['runs_succeeded']} runs in {report['seconds']} s")
    for key in ("transactions_per_run", "write_transactions_per_run", "statements_per_run"):
        print(f"  {key}: {report[key]}")
    print(f"  {'store method':<24} {'calls/run':>9} {'ms/call':>9} {'total s':>8}  (lock wait included)")
    for name, row in report["store_calls"].items():
        print(f"  {name:<24} {row['calls_per_run']:>9} {row['ms_per_call']:>9} {row['total_s']:>8}")
    if profiler is not None:
        print(profiler.output_text(unicode=False, color=False, show_all=False, timeline=False))
        if args.html:
            args.html.write_text(profiler.output_html())


if __name__ == "__main__":
    main()

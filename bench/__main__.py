"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print a table, write results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fairness, fire, instances, latency, overhead, scale, throughput

BENCHES: dict[str, Callable[[bool], Awaitable[dict[str, Any]]]] = {
    "fire": fire.run,
    "throughput": throughput.run,
    "scale": scale.run,
    "latency": latency.run,
    "overhead": overhead.run,
    "instances": instances.run,
    "fairness": fairness.run,
}
RESULTS = Path(__file__).with_name("results.json")


def machine() -> dict[str, Any]:
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _get(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") + unit
    return f"{value}{unit}"


# (benchmark, label, path in its results, unit, target text, target check or None)
Row = tuple[str, str, str, str, str, Callable[[Any, dict[str, Any]], bool] | None]


def _lt(limit: float) -> Callable[[Any, dict[str, Any]], bool]:
    return lambda value, _: value is not None and value <= limit


def _ge(limit: float) -> Callable[[Any, dict[str, Any]], bool]:
    return lambda value, _: value is not None and value >= limit


def _twice_better(value: Any, results: dict[str, Any]) -> bool:
    aps = _get(results, "fire.apscheduler_3_11.lateness.p99_ms")
    return value is not None and aps is not None and value * 2 <= aps


ROWS: list[Row] = [
    ("fire", "1 orchestrator: claim lateness p50", "orchestrator.claim_lateness.p50_ms", " ms", "", None),
    (
        "fire",
        "1 orchestrator: claim lateness p99",
        "orchestrator.claim_lateness.p99_ms",
        " ms",
        "<= 50 ms",
        _lt(50),
    ),
    ("fire", "1 orchestrator: first-step lateness p50", "orchestrator.step_lateness.p50_ms", " ms", "", None),
    (
        "fire",
        "1 orchestrator: first-step lateness p99",
        "orchestrator.step_lateness.p99_ms",
        " ms",
        "<= 50 ms; 2x < APScheduler",
        lambda v, r: _lt(50)(v, r) and _twice_better(v, r),
    ),
    ("fire", "1 orchestrator: first-step lateness max", "orchestrator.step_lateness.max_ms", " ms", "", None),
    (
        "fire",
        "1 orchestrator: all 1,000 stored succeeded",
        "orchestrator.all_stored_s",
        " s",
        "<= 1 s",
        _lt(1),
    ),
    ("fire", "1 orchestrator: DB transactions / run", "orchestrator.db_transactions_per_run", "", "", None),
    ("fire", "1 asyncio heap (floor): lateness p50", "asyncio_heap.lateness.p50_ms", " ms", "", None),
    ("fire", "1 asyncio heap (floor): lateness p99", "asyncio_heap.lateness.p99_ms", " ms", "", None),
    ("fire", "1 APScheduler 3.11: lateness p50", "apscheduler_3_11.lateness.p50_ms", " ms", "", None),
    ("fire", "1 APScheduler 3.11: lateness p99", "apscheduler_3_11.lateness.p99_ms", " ms", "", None),
    ("fire", "1 APScheduler 3.11: all done", "apscheduler_3_11.all_done_s", " s", "", None),
    (
        "throughput",
        "2 runs/s, 8 concurrent (default)",
        "default_8.runs_per_second",
        "",
        ">= 2,000",
        _ge(2000),
    ),
    ("throughput", "2 runs/s, 100 concurrent", "concurrency_100.runs_per_second", "", ">= 2,000", _ge(2000)),
    (
        "throughput",
        "2 queued runs left, 8 concurrent",
        "default_8.backlog_left",
        "",
        "> 0 (0: ran dry)",
        None,
    ),
    ("throughput", "2 queued runs left, 100 concurrent", "concurrency_100.backlog_left", "", "> 0", None),
    ("throughput", "2 write transactions / run", "default_8.db_write_transactions_per_run", "", "", None),
    ("throughput", "2 statements / run", "default_8.db_statements_per_run", "", "", None),
    ("scale", "3 start-up, empty DB", "empty_db.startup_s", " s", "", None),
    ("scale", "3 RSS, empty DB", "empty_db.rss_mb", " MB", "", None),
    ("scale", "3 tasks in the DB", "loaded.tasks", "", "100,000", None),
    ("scale", "3 start-up to first answered call", "loaded.startup_s", " s", "<= 2 s", _lt(2)),
    ("scale", "3 RSS after start-up", "loaded.rss_mb", " MB", "<= 150 MB", _lt(150)),
    ("scale", "3 RSS after firing 1,000", "loaded.rss_after_fire_mb", " MB", "<= 150 MB", _lt(150)),
    (
        "scale",
        "3 first-step lateness p99 (loaded)",
        "loaded.fire.step_lateness.p99_ms",
        " ms",
        "<= 50 ms",
        _lt(50),
    ),
    ("scale", "3 claim lateness p99 (loaded)", "loaded.fire.claim_lateness.p99_ms", " ms", "", None),
    ("scale", "3 all 1,000 stored (loaded)", "loaded.fire.all_stored_s", " s", "<= 1 s", _lt(1)),
    ("latency", "4 runs in the DB", "runs", "", "100,000", None),
    ("latency", "4 stdio list_catalog p50 (floor)", "stdio.list_catalog_no_db.p50_ms", " ms", "", None),
    ("latency", "4 stdio get_task p50", "stdio.get_task.p50_ms", " ms", "<= 2 ms", _lt(2)),
    ("latency", "4 stdio get_task p99", "stdio.get_task.p99_ms", " ms", "", None),
    ("latency", "4 stdio list_runs p50", "stdio.list_runs_limit_50.p50_ms", " ms", "<= 2 ms", _lt(2)),
    ("latency", "4 stdio list_runs p99", "stdio.list_runs_limit_50.p99_ms", " ms", "", None),
    (
        "latency",
        "4 stdio list_runs p50, client not validating",
        "stdio.list_runs_limit_50_unvalidated.p50_ms",
        " ms",
        "",
        None,
    ),
    ("latency", "4 http list_catalog p50 (floor)", "http.list_catalog_no_db.p50_ms", " ms", "", None),
    ("latency", "4 http get_task p50", "http.get_task.p50_ms", " ms", "<= 4 ms", _lt(4)),
    ("latency", "4 http get_task p99", "http.get_task.p99_ms", " ms", "", None),
    ("latency", "4 http list_runs p50", "http.list_runs_limit_50.p50_ms", " ms", "<= 4 ms", _lt(4)),
    ("latency", "4 http list_runs p99", "http.list_runs_limit_50.p99_ms", " ms", "", None),
    (
        "latency",
        "4 http list_runs p50, client not validating",
        "http.list_runs_limit_50_unvalidated.p50_ms",
        " ms",
        "",
        None,
    ),
    (
        "latency",
        "4 http no-auth list_catalog p50",
        "http_no_auth.list_catalog_no_db.p50_ms",
        " ms",
        "",
        None,
    ),
    ("latency", "4 http no-auth get_task p50", "http_no_auth.get_task.p50_ms", " ms", "", None),
    ("overhead", "5 10 direct SDK calls (stdio server)", "direct_10_calls_ms", " ms", "", None),
    ("overhead", "5 run_now(wait) of 10 steps", "run_now_wait_ms", " ms", "", None),
    ("overhead", "5 overhead / step (run_now wait)", "overhead_per_step_ms", " ms", "<= 1 ms", _lt(1)),
    (
        "overhead",
        "5 overhead / step (run started->finished)",
        "overhead_per_step_in_run_ms",
        " ms",
        "<= 1 ms",
        _lt(1),
    ),
    ("overhead", "5 run of 10 built-in core.noop steps", "builtin_run_duration_ms", " ms", "", None),
    (
        "instances",
        "6 SQLite, 1 instance(s): runs/s",
        "sqlite.instances_1.throughput.runs_per_second",
        "",
        "",
        None,
    ),
    (
        "instances",
        "6 SQLite, 1 instance(s): fire p50",
        "sqlite.instances_1.fire.lateness.p50_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 SQLite, 1 instance(s): fire p99",
        "sqlite.instances_1.fire.lateness.p99_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 SQLite, 3 instance(s): runs/s",
        "sqlite.instances_3.throughput.runs_per_second",
        "",
        "",
        None,
    ),
    (
        "instances",
        "6 SQLite, 3 instance(s): fire p50",
        "sqlite.instances_3.fire.lateness.p50_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 SQLite, 3 instance(s): fire p99",
        "sqlite.instances_3.fire.lateness.p99_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 PostgreSQL, 1 instance(s): runs/s",
        "postgresql.instances_1.throughput.runs_per_second",
        "",
        "",
        None,
    ),
    (
        "instances",
        "6 PostgreSQL, 1 instance(s): fire p50",
        "postgresql.instances_1.fire.lateness.p50_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 PostgreSQL, 1 instance(s): fire p99",
        "postgresql.instances_1.fire.lateness.p99_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 PostgreSQL, 3 instance(s): runs/s",
        "postgresql.instances_3.throughput.runs_per_second",
        "",
        "",
        None,
    ),
    (
        "instances",
        "6 PostgreSQL, 3 instance(s): fire p50",
        "postgresql.instances_3.fire.lateness.p50_ms",
        " ms",
        "",
        None,
    ),
    (
        "instances",
        "6 PostgreSQL, 3 instance(s): fire p99",
        "postgresql.instances_3.fire.lateness.p99_ms",
        " ms",
        "",
        None,
    ),
    (
        "fairness",
        "7 run_now start behind a priority-5 flood p50",
        "start_latency.p50_ms",
        " ms",
        "<= 1 nap (1,000 ms)",
        _lt(1000),
    ),
    ("fairness", "7 run_now start behind a priority-5 flood max", "start_latency.max_ms", " ms", "", None),
]


def table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':<46} {'measured':>14}  {'target':<28} met", "-" * 96]
    for bench, label, path, unit, target, check in ROWS:
        if bench not in results:
            continue
        value = _get(results[bench], path)
        met = "" if check is None else ("yes" if check(value, results) else "NO")
        lines.append(f"{label:<46} {_fmt(value, unit):>14}  {target:<28} {met}")
    return "\n".join(lines)


async def main(quick: bool, only: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine(),
    }
    for name, bench in BENCHES.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = await bench(quick)
        print(f"  {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return results


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter windows (< 2 min)")
    parser.add_argument("--only", nargs="*", choices=list(BENCHES), default=[], help="run only these")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.perf_counter()
    results = asyncio.run(main(args.quick, args.only))
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))
    print(f"\n{results['mode']} run in {results['elapsed_s']} s on {results['machine']}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())

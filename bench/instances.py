"""Several instances on one database: runs/s and fire precision with 1 and 3 server processes, on
SQLite and on PostgreSQL.

Each measurement gets a fresh database (a temporary SQLite file, or a new PostgreSQL database on the
server named by `ORCH_BENCH_POSTGRES_URL` or else `ORCH_TEST_POSTGRES_URL`; without either the
PostgreSQL half is skipped and says so). The instances are real `orchestrator-mcp serve` processes
with nobody talking to them (stdin held open), so only their engines work.

- *Throughput*: 100 manual tasks (overlap `allow`) with a backlog of queued runs (what `run_now`
  inserts); succeeded runs are counted from `finished_at` over a window that starts after a warm-up.
- *Fire precision*: 50 interval tasks every 2 s, inserted once the processes are up, first due
  2-3 s later; lateness = `started_at - scheduled_for` of every scheduled run that started, plus a
  duplicate count and how many fire times were recorded `skipped` because the task's previous run
  was still active (overlap policy `skip`: the engine was saturated; one skipped run stands for a
  stretch of them, `skipped_fires`).

`python -m bench.instances [--quick] [--output FILE]`, or `python -m bench --only instances`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.engine import make_url

from bench.common import manual_backlog, summary_ms, task_template, temp_database, utcnow
from orchestrator_mcp.store.sql import RUNS, TASKS, SqlStore

TASKS_COUNT = 100
BACKLOG_PER_SECOND = 4_000
WARMUP_SECONDS = 2.0
FIRE_TASKS = 50
FIRE_EVERY_SECONDS = 2
FIRE_LEAD_SECONDS = 3
"""The first fire time is 2-3 s after the tasks are inserted (whole second): over the engine's 1 s poll."""
FIRE_SETTLE_SECONDS = 1.0
"""How long the last fire time's runs get to start before the count."""
INSTANCES = (1, 3)


def postgres_url() -> str | None:
    return os.environ.get("ORCH_BENCH_POSTGRES_URL") or os.environ.get("ORCH_TEST_POSTGRES_URL")


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    """A fresh database of `backend`, dropped afterwards."""
    if backend == "sqlite":
        with temp_database("instances") as (url, _path):
            yield url
        return
    server = postgres_url()
    assert server is not None
    parsed = make_url(server)
    admin_dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"orch_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    await admin.close()
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def insert_all(store: SqlStore, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    def work(conn: Connection) -> None:
        for start in range(0, len(rows), 2_000):
            conn.execute(insert(table), list(rows[start : start + 2_000]))

    await store.database.write(work)


def spawn(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ORCH_DATABASE_URL": url, "ORCH_LOG_LEVEL": "ERROR", "ORCH_BACKGROUND_WORKER": "off"}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator_mcp", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


@asynccontextmanager
async def processes(url: str, count: int, store: SqlStore) -> AsyncIterator[None]:
    """`count` server processes on `url`, all registered when this enters; SIGTERM on exit."""
    started = [spawn(url) for _ in range(count)]
    try:
        with anyio.fail_after(60):
            while True:
                if len(await store.list_instances(utcnow() - timedelta(seconds=30))) >= count:
                    break
                await anyio.sleep(0.1)
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            await anyio.to_thread.run_sync(process.wait, 30)
            assert process.stdin is not None
            process.stdin.close()


async def throughput(backend: str, count: int, duration: float) -> dict[str, Any]:
    async with database(backend) as url:
        store = await SqlStore.open(url)
        try:
            now = utcnow()
            backlog = int(BACKLOG_PER_SECOND * (duration + WARMUP_SECONDS + 5))
            tasks, runs = manual_backlog(TASKS_COUNT, backlog, now)
            await insert_all(store, TASKS, tasks)
            await insert_all(store, RUNS, runs)
            async with processes(url, count, store):
                window_start = utcnow() + timedelta(seconds=WARMUP_SECONDS)
                await anyio.sleep(WARMUP_SECONDS + duration)
                window_end = window_start + timedelta(seconds=duration)
            done = select(func.count()).where(
                RUNS.c.status == "succeeded",
                RUNS.c.finished_at >= window_start,
                RUNS.c.finished_at < window_end,
            )
            in_window = int(await store.database.read(lambda conn: conn.execute(done).scalar_one()))
            queued = select(func.count()).where(RUNS.c.status == "queued")
            left = int(await store.database.read(lambda conn: conn.execute(queued).scalar_one()))
        finally:
            await store.close()
    return {
        "instances": count,
        "seconds": duration,
        "succeeded_in_window": in_window,
        "runs_per_second": round(in_window / duration, 1),
        "backlog_left": left,
    }


async def fire_precision(backend: str, count: int, duration: float) -> dict[str, Any]:
    async with database(backend) as url:
        store = await SqlStore.open(url)
        try:
            async with processes(url, count, store):
                # Inserted once the instances are up: they find the tasks on their next poll.
                now = utcnow()
                first = (now + timedelta(seconds=FIRE_LEAD_SECONDS)).replace(microsecond=0)
                last = first + timedelta(seconds=duration - FIRE_EVERY_SECONDS)
                tasks = []
                for _ in range(FIRE_TASKS):
                    task = task_template({"kind": "interval", "expr": f"{FIRE_EVERY_SECONDS}s"}, now)
                    task["anchor"] = task["next_run_at"] = first
                    tasks.append(task)
                await insert_all(store, TASKS, tasks)
                await anyio.sleep((last - utcnow()).total_seconds() + FIRE_SETTLE_SECONDS)
            columns = (
                RUNS.c.task_id,
                RUNS.c.scheduled_for,
                RUNS.c.started_at,
                RUNS.c.instance_id,
                RUNS.c.status,
                RUNS.c.skipped_fires,
            )
            scheduled = select(*columns).where(RUNS.c.trigger == "schedule", RUNS.c.scheduled_for <= last)
            rows = await store.database.read(lambda conn: list(conn.execute(scheduled)))
        finally:
            await store.close()
    keys = [(row.task_id, row.scheduled_for) for row in rows]
    lateness = [(row.started_at - row.scheduled_for).total_seconds() for row in rows if row.started_at]
    # A skipped run stands for `skipped_fires` consecutive fire times (one record per stretch).
    records = [row for row in rows if row.status == "skipped"]
    skipped = sum(row.skipped_fires or 1 for row in records)
    expected = FIRE_TASKS * (int((last - first).total_seconds()) // FIRE_EVERY_SECONDS + 1)
    return {
        "instances": count,
        "tasks": FIRE_TASKS,
        "every_s": FIRE_EVERY_SECONDS,
        "fire_times_expected": expected,
        "runs": len(rows),
        "started": len(lateness),
        "skipped_overlap": skipped,
        "fire_times_recorded": len(rows) - len(records) + skipped,
        "duplicates": len(keys) - len(set(keys)),
        "executing_instances": len({row.instance_id for row in rows if row.instance_id}),
        "lateness": summary_ms(lateness),
    }


async def run(quick: bool) -> dict[str, Any]:
    counted, firing = (5.0, 4.0) if quick else (20.0, 20.0)  # quick: 2 fire times of 50 tasks
    backends = ["sqlite"] + (["postgresql"] if postgres_url() else [])
    results: dict[str, Any] = {}
    if not postgres_url():
        results["postgresql"] = "skipped: set ORCH_BENCH_POSTGRES_URL (or ORCH_TEST_POSTGRES_URL)"
    for backend in backends:
        for count in INSTANCES:
            print(f"  {backend}, {count} instance(s) ...", file=sys.stderr, flush=True)
            results.setdefault(backend, {})[f"instances_{count}"] = {
                "throughput": await throughput(backend, count, counted),
                "fire": await fire_precision(backend, count, firing),
            }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'database':<11} {'instances':>9} {'runs/s':>8} {'fire p50':>10} {'fire p99':>10} "
        f"{'max':>10} {'fires/expected':>14} {'dups':>5} {'skipped':>8}",
    ]
    for backend in ("sqlite", "postgresql"):
        measured = results.get(backend)
        if not isinstance(measured, dict):
            lines.append(f"{backend:<11} {measured}")
            continue
        for key, figures in measured.items():
            fire, lateness = figures["fire"], figures["fire"]["lateness"]
            lines.append(
                f"{backend:<11} {key.split('_')[1]:>9} {figures['throughput']['runs_per_second']:>8} "
                f"{lateness['p50_ms']:>8.1f}ms {lateness['p99_ms']:>8.1f}ms {lateness['max_ms']:>8.1f}ms "
                f"{fire['fire_times_recorded']:>7}/{fire['fire_times_expected']:<6} {fire['duplicates']:>5} "
                f"{fire['skipped_overlap']:>8}"
            )
    return "\n".join(lines)


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instances", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 s / 4 s windows instead of 20 s")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results-instances.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = asyncio.run(run(args.quick))
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())

"""Real server processes on a PostgreSQL database, and read-only checks of what they left there.

Starting them (`connect`, `start`, given the URL) and stopping them (`kill`, `terminate`) is
tests.reliability.support's.
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import anyio
import asyncpg

from tests.postgres.server import plain
from tests.reliability.support import FireCheck


async def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(plain(url))
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def wait_for(url: str, sql: str, *args: Any, within: float = 20) -> list[asyncpg.Record]:
    """Poll until `sql` returns rows (tolerating a schema that does not exist yet)."""
    deadline = time.monotonic() + within
    while True:
        try:
            rows = await query(url, sql, *args)
        except asyncpg.UndefinedTableError:
            rows = []
        if rows:
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing matched {sql!r} within {within}s")
        await anyio.sleep(0.05)


async def instance_of(url: str, process: subprocess.Popen[bytes]) -> str:
    rows = await wait_for(url, "SELECT id FROM instances WHERE pid = $1", process.pid)
    return str(rows[0]["id"])


async def await_listeners(url: str, count: int) -> None:
    """Wait (at most 20 s) until `count` sessions listen for notices on this database."""
    with anyio.fail_after(20):
        while True:
            if await listeners(url) >= count:
                return
            await anyio.sleep(0.05)


async def listeners(url: str) -> int:
    """Sessions of this database that are listening for notices."""
    rows = await query(
        url,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
    )
    return int(rows[0]["n"])


async def check_fire_times(url: str, step: timedelta, since: datetime | None = None) -> FireCheck:
    """Fire times (from `since`, when given) by `schedule` runs, and by skipped ones for each of the
    `skipped_fires` times, `step` apart, they stand for; lateness = start minus fire time."""
    rows = await query(
        url,
        "SELECT task_id, scheduled_for, started_at, status, skipped_fires FROM runs "
        "WHERE trigger = 'schedule' AND fire_key NOT LIKE 'missed:%'",
    )
    check = FireCheck()
    by_task: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        fires = row["skipped_fires"] if row["status"] == "skipped" else 1
        for moment in (row["scheduled_for"] + n * step for n in range(fires)):
            if since is None or moment >= since:
                by_task[row["task_id"]][moment] += 1
        if since is not None and row["scheduled_for"] < since:
            continue
        if row["started_at"] is not None:
            check.lateness.append((row["started_at"] - row["scheduled_for"]).total_seconds())
    check.tally(by_task, step)
    return check


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")

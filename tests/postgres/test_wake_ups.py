"""A change made on one instance is acted on by another at once, not on its next poll: even when
the database restarted under both of them in between."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import anyio
import pytest
from mcp import Client

from tests.conftest import call_ok
from tests.postgres.processes import (
    await_listeners,
    check_fire_times,
    instance_of,
    percentile,
    query,
    wait_for,
)
from tests.postgres.server import Cluster
from tests.reliability.support import connect, ready, start, terminate

pytestmark = pytest.mark.slow  # spawns server processes

SLOW_POLL = {"ORCH_POLL_INTERVAL_SECONDS": "30"}
"""Far longer than any wait below: only a notice can explain a quick start."""


@asynccontextmanager
async def busy_a_and_idle_b(url: str) -> AsyncIterator[tuple[Client, subprocess.Popen[bytes]]]:
    """Instance A (a client's process) with its one slot taken by a long run; instance B idle."""
    async with connect(url, ORCH_MAX_CONCURRENT_RUNS="1", **SLOW_POLL) as client:
        long = await call_ok(
            client,
            "schedule_task",
            {
                "title": "hold A's slot",
                "schedule": {"kind": "manual"},
                "pipeline": [{"id": "nap", "uses": "core.sleep", "with": {"seconds": 60}}],
            },
        )
        held = await call_ok(client, "run_now", {"task_id": long["id"]})  # A is alone: A runs it
        await wait_for(url, "SELECT 1 FROM runs WHERE id = $1 AND status = 'running'", held["id"])
        other = start(url, **SLOW_POLL)
        try:
            await ready(other)
            await instance_of(url, other)
            await await_listeners(url, 2)
            yield client, other
        finally:
            terminate(other)


async def run_now_elsewhere(client: Client, url: str, other: subprocess.Popen[bytes]) -> float:
    """run_now on A, which has no free slot; returns how long B took to start the run."""
    quick = await call_ok(
        client,
        "schedule_task",
        {"title": "quick", "schedule": {"kind": "manual"}, "pipeline": [{"id": "n", "uses": "core.noop"}]},
    )
    run = await call_ok(client, "run_now", {"task_id": quick["id"]})
    rows = await wait_for(
        url,
        "SELECT instance_id, queued_at, started_at FROM runs WHERE id = $1 AND started_at IS NOT NULL",
        run["id"],
    )
    assert rows[0]["instance_id"] == await instance_of(url, other)
    delay: float = (rows[0]["started_at"] - rows[0]["queued_at"]).total_seconds()
    return delay


async def test_run_now_on_one_instance_is_started_by_another_within_milliseconds(pg_url: str) -> None:
    async with busy_a_and_idle_b(pg_url) as (client, other):
        delays = [await run_now_elsewhere(client, pg_url, other) for _ in range(5)]
    print(f"\nrun_now on A started by B after {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
    assert max(delays) < 2, "a notice should wake B long before its 30 s poll"


async def test_instances_recover_from_a_database_restart_without_restarting(cluster: Cluster) -> None:
    url = cluster.url
    async with busy_a_and_idle_b(url) as (client, other):
        await call_ok(
            client,
            "schedule_task",
            {
                "title": "tick",
                "schedule": {"kind": "interval", "expr": "1s"},
                "pipeline": [{"id": "n", "uses": "core.noop"}],
            },
        )
        await wait_for(url, "SELECT 1 FROM runs WHERE trigger = 'schedule' AND status = 'succeeded'")
        cluster.stop()
        # The outage is the scenario, so it lasts a fixed time: both instances' 1 s heartbeats
        # meet a database that is gone.
        await anyio.sleep(2)
        cluster.start()
        back = (await query(url, "SELECT now() AT TIME ZONE 'utc' AS t"))[0]["t"]
        assert other.poll() is None
        # The engine loops came back: the interval task fires again...
        await wait_for(
            url,
            "SELECT 1 FROM runs WHERE trigger = 'schedule' AND status = 'succeeded' AND scheduled_for > $1",
            back + timedelta(seconds=2),
        )
        # ...and so did both listeners: a run_now on A still wakes B at once.
        await await_listeners(url, 2)
        delay = await run_now_elsewhere(client, url, other)
        # A little more firing after the restart, for the check below: a fire time two seconds on.
        now = (await query(url, "SELECT now() AT TIME ZONE 'utc' AS t"))[0]["t"]
        await wait_for(
            url,
            "SELECT 1 FROM runs WHERE trigger = 'schedule' AND status = 'succeeded' AND scheduled_for > $1",
            now + timedelta(seconds=2),
        )
    check = await check_fire_times(url, timedelta(seconds=1), since=back + timedelta(seconds=1))
    print(
        f"\nafter the restart: run_now on A started by B after {delay * 1000:.0f} ms; "
        f"fire_times={check.fire_times} lost={len(check.lost)} duplicates={len(check.duplicates)} "
        f"lateness p99={percentile(check.lateness, 0.99):.3f}s"
    )
    assert delay < 2
    assert check.duplicates == [] and check.lost == []
    assert isinstance(back, datetime)

"""Three instances on one PostgreSQL database for 20 s or more, one killed with kill -9 midway:
every fire time runs once, the dead instance's run ends `interrupted`, and the survivors keep every
task on time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from tests.conftest import call_ok
from tests.postgres.processes import (
    check_fire_times,
    instance_of,
    percentile,
    query,
    wait_for,
)
from tests.reliability.support import connect, kill, ready, start, terminate

pytestmark = pytest.mark.slow  # spawns server processes

BEFORE_KILL = 8
AFTER_KILL = 12
TASKS = 4
NAPPERS = 2
INSTANCE_TIMEOUT = "5"


async def fire_times_since(url: str, since: datetime | None, count: int) -> None:
    """Wait (a bound of a minute past what `count` fire times take) until `count` runs of scheduled
    fire times later than `since` exist: time measured in fire times, not seconds."""
    with anyio.fail_after(60 + count / TASKS):
        while True:
            rows = await query(
                url,
                "SELECT count(*) AS n FROM runs WHERE trigger = 'schedule' AND fire_key NOT LIKE 'missed:%'"
                " AND ($1::timestamp IS NULL OR scheduled_for > $1)",
                since,
            )
            if rows[0]["n"] >= count:
                return
            await anyio.sleep(0.2)


async def test_kill_9_of_one_of_three_instances_loses_and_doubles_nothing(pg_url: str) -> None:
    env = {"ORCH_INSTANCE_TIMEOUT_SECONDS": INSTANCE_TIMEOUT}
    # The instance the test talks to keeps one run slot: an instance with free slots starts the runs
    # it fires itself, and on a loaded machine one instance can win every fire; with one slot it
    # leaves the rest of each fire queued for the other two to claim.
    async with connect(pg_url, **env, ORCH_MAX_CONCURRENT_RUNS="1") as client:
        for n in range(TASKS):
            # Some tasks nap, so an instance is often in the middle of a run when it dies.
            step = {"id": "nap", "uses": "core.sleep", "with": {"seconds": 0.8}} if n < NAPPERS else None
            await call_ok(
                client,
                "schedule_task",
                {
                    "title": f"tick {n}",
                    "schedule": {"kind": "interval", "expr": "1s"},
                    "pipeline": [step or {"id": "n", "uses": "core.noop"}],
                },
            )
        began = time.monotonic()
        spawned = [start(pg_url, **env), start(pg_url, **env)]
        doomed = spawned[0]
        try:
            for process in spawned:
                await ready(process)
            by_instance = {await instance_of(pg_url, process): process for process in spawned}
            status = await call_ok(client, "server_status")
            assert len(status["instances"]) == 3
            # Let the three share the work for BEFORE_KILL fire times of every task.
            await fire_times_since(pg_url, None, TASKS * BEFORE_KILL)
            # Kill one of the two in the middle of one of its runs: one napping (a no-op run is over
            # in a blink), whichever of them holds it.
            running = await wait_for(
                pg_url,
                "SELECT runs.id, runs.instance_id FROM runs JOIN steps ON steps.run_id = runs.id"
                " WHERE runs.status = 'running' AND runs.instance_id = ANY($1::text[])"
                " AND steps.step_id = 'nap' AND steps.status = 'running'",
                list(by_instance),
                within=60,
            )
            doomed = by_instance[running[0]["instance_id"]]
            kill(doomed)
            killed_at = datetime.now(UTC).replace(tzinfo=None)
            with anyio.fail_after(60):
                while True:
                    interrupted = await call_ok(client, "get_run", {"run_id": running[0]["id"]})
                    if interrupted["status"] != "running":
                        break
                    await anyio.sleep(0.1)
            print(f"\nkilled at {time.monotonic() - began:.1f}s, its run ended {interrupted['finished_at']}")
            # The two survivors keep firing: AFTER_KILL fire times of every task after the kill.
            await fire_times_since(pg_url, killed_at, TASKS * AFTER_KILL)
            with anyio.fail_after(60):  # its row goes once it has been silent for the instance timeout
                while True:
                    if len((await call_ok(client, "server_status"))["instances"]) == 2:
                        break
                    await anyio.sleep(0.2)
        finally:
            if doomed.poll() is None:
                kill(doomed)
            for process in spawned:
                if process is not doomed:
                    terminate(process)

    check = await check_fire_times(pg_url, timedelta(seconds=1))
    after = await check_fire_times(pg_url, timedelta(seconds=1), since=killed_at + timedelta(seconds=1))
    executors = await query(pg_url, "SELECT DISTINCT instance_id FROM runs WHERE instance_id IS NOT NULL")
    print(
        f"\nthree instances on PostgreSQL: seconds={time.monotonic() - began:.0f} tasks={TASKS} "
        f"fire_times_checked={check.fire_times} duplicates={len(check.duplicates)} lost={len(check.lost)} "
        f"interrupted={interrupted['status']} executing_instances={len(executors)} "
        f"after_kill: fire_times={after.fire_times} lost={len(after.lost)} "
        f"lateness_p50={percentile(after.lateness, 0.5):.3f}s p99={percentile(after.lateness, 0.99):.3f}s"
    )
    assert interrupted["status"] == "interrupted"
    assert "stopped before it ended" in interrupted["error"]["message"]
    assert check.duplicates == []
    assert check.lost == []
    assert check.fire_times >= TASKS * (BEFORE_KILL + AFTER_KILL - 4)
    assert len(executors) == 3
    # The survivors keep every task firing after the kill.
    assert after.lost == [] and after.fire_times >= TASKS * (AFTER_KILL - 4)
    assert (await query(pg_url, "SELECT count(*) AS n FROM runs WHERE status = 'running'"))[0]["n"] == 0

"""Downtime through real processes: each misfire policy catches up (or not) as it says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from tests.conftest import call_ok
from tests.reliability.support import (
    connect,
    kill,
    query,
    ready,
    start,
    stored_time,
    terminate,
    wait_for,
)

pytestmark = pytest.mark.slow  # spawns server processes

DOWNTIME = 8


def schedule_runs(database: Path, task_id: str) -> list[dict[str, object]]:
    rows = query(
        database,
        "SELECT scheduled_for, fire_key, status, error, queued_at, skipped_fires FROM runs "
        "WHERE task_id = ? AND trigger = 'schedule' ORDER BY scheduled_for",
        task_id,
    )
    return [dict(row) for row in rows]


async def test_misfire_policies_after_a_sigterm_and_eight_seconds_down(tmp_path: Path) -> None:
    database = tmp_path / "misfire.db"
    policies = ("run_once", "run_all", "skip")
    tasks: dict[str, str] = {}
    async with connect(database) as client:
        for policy in policies:
            task = await call_ok(
                client,
                "schedule_task",
                {
                    "title": policy,
                    "schedule": {"kind": "interval", "expr": "1s"},
                    "pipeline": [{"id": "n", "uses": "core.noop"}],
                    "policy": {"misfire": policy, "overlap": "allow"},
                },
            )
            tasks[policy] = task["id"]
        for task_id in tasks.values():
            await wait_for(database, "SELECT 1 FROM runs WHERE task_id = ? AND status = 'succeeded'", task_id)
    # The client's server stopped when its stdin closed; a bare server starts, then SIGTERM.
    server = start(database)
    try:
        await ready(server)  # its handler is installed: SIGTERM is a clean stop, not a death
        assert terminate(server) == 0
    finally:
        if server.poll() is None:
            kill(server)
    stopped = {policy: schedule_runs(database, task_id)[-1] for policy, task_id in tasks.items()}
    stopped_at = datetime.now(UTC)
    # The downtime is what this test is about: real time passes with no server, so fire times are missed.
    await anyio.sleep(DOWNTIME)
    server = start(database)
    try:
        await ready(server)
        for policy in ("run_once", "skip"):  # each records its missed times in its catch-up fire
            await wait_for(
                database, "SELECT 1 FROM runs WHERE task_id = ? AND fire_key LIKE 'missed:%'", tasks[policy]
            )
        # run_all records none: its catch-up fire queues one run per missed time, all at once.
        with anyio.fail_after(60):
            while True:
                queued = [
                    stored_time(str(run["queued_at"])) for run in schedule_runs(database, tasks["run_all"])
                ]
                if max(queued) > stopped_at:
                    break
                await anyio.sleep(0.05)
        assert terminate(server) == 0
    finally:
        if server.poll() is None:
            kill(server)

    for policy, task_id in tasks.items():
        last_before = stored_time(str(stopped[policy]["scheduled_for"]))
        after = [
            run
            for run in schedule_runs(database, task_id)
            if stored_time(str(run["scheduled_for"])) > last_before
        ]
        records = [run for run in after if str(run["fire_key"]).startswith("missed:")]
        runs = [run for run in after if not str(run["fire_key"]).startswith("missed:")]
        restart_queued = min(stored_time(str(run["queued_at"])) for run in after)
        caught_up = [run for run in runs if stored_time(str(run["scheduled_for"])) < restart_queued]
        print(f"\n{policy}: misfire records={len(records)} catch-up runs={len(caught_up)}", end="")
        if policy == "run_all":
            # Every missed time is within the grace: one run each, nothing recorded as missed.
            assert records == []
            assert DOWNTIME - 2 <= len(caught_up) <= DOWNTIME + 6
            times = [stored_time(str(run["scheduled_for"])) for run in caught_up]
            assert all(b - a == timedelta(seconds=1) for a, b in zip(times, times[1:], strict=False))
            continue
        (record,) = records
        error = json.loads(str(record["error"]))
        assert error["type"] == "misfire"
        missed = int(str(record["skipped_fires"]))
        assert f"missed {missed} fire times from " in error["message"]
        if policy == "run_once":
            assert len(caught_up) == 1, caught_up
            assert DOWNTIME - 3 <= missed <= DOWNTIME + 6
        else:
            assert caught_up == []
            assert DOWNTIME - 2 <= missed <= DOWNTIME + 7

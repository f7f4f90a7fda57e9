"""Three server processes on one SQLite file: every fire time runs once, every tool call is answered."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.conftest import call_ok
from tests.reliability.support import check_fire_times, connect, query

pytestmark = pytest.mark.slow  # spawns server processes

SECONDS = 20
TASKS = 4


async def test_three_processes_share_one_file_without_duplicates_or_gaps(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    calls = 0
    async with AsyncExitStack() as stack:
        clients: list[Client] = [await stack.enter_async_context(connect(database)) for _ in range(3)]
        task_ids = [
            (
                await call_ok(
                    clients[0],
                    "schedule_task",
                    {
                        "title": f"tick {n}",
                        "schedule": {"kind": "interval", "expr": "1s"},
                        "pipeline": [{"id": "n", "uses": "core.noop"}],
                    },
                )
            )["id"]
            for n in range(TASKS)
        ]
        instances_seen: set[int] = set()
        ends = time.monotonic() + SECONDS
        while time.monotonic() < ends:
            for index, client in enumerate(clients):
                with anyio.fail_after(10):
                    task_id = task_ids[(calls + index) % TASKS]
                    await call_ok(client, "list_runs", {"task_id": task_id, "limit": 5})
                    await call_ok(client, "get_task", {"task_id": task_id})
                    status = await call_ok(client, "server_status")
                    instances_seen.add(len(status["instances"]))
                    calls += 3
            await anyio.sleep(0.1)
        assert 3 in instances_seen
        executed_by = query(database, "SELECT DISTINCT instance_id FROM runs WHERE instance_id IS NOT NULL")

    check = check_fire_times(database, timedelta(seconds=1))
    print(
        f"\nthree processes: seconds={SECONDS} tasks={TASKS} tool_calls={calls} "
        f"fire_times_checked={check.fire_times} duplicates={len(check.duplicates)} lost={len(check.lost)} "
        f"executing_instances={len(executed_by)}"
    )
    assert check.duplicates == []
    assert check.lost == []
    assert check.fire_times >= TASKS * (SECONDS - 3)
    assert query(database, "SELECT count(*) AS n FROM runs WHERE status = 'running'")[0]["n"] == 0

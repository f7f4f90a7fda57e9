"""A task paused, cancelled or deleted through one process stops firing in every process at once."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import call_ok
from tests.reliability.support import connect, kill, query, ready, start, wait_for

pytestmark = pytest.mark.slow  # spawns server processes

EVERY_SECOND = {"kind": "interval", "expr": "1s"}
NOOP = [{"id": "n", "uses": "core.noop"}]


def runs_of(database: Path, task_id: str) -> int:
    return int(query(database, "SELECT count(*) AS n FROM runs WHERE task_id = ?", task_id)[0]["n"])


async def test_pause_cancel_and_delete_stop_the_other_processes_too(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    others = [start(database) for _ in range(2)]
    try:
        for process in others:
            await ready(process)
        async with connect(database) as client:
            tasks = [
                await call_ok(
                    client, "schedule_task", {"title": f"t{n}", "schedule": EVERY_SECOND, "pipeline": NOOP}
                )
                for n in range(3)
            ]
            witness = await call_ok(
                client, "schedule_task", {"title": "witness", "schedule": EVERY_SECOND, "pipeline": NOOP}
            )
            for task in tasks:
                await wait_for(
                    database, "SELECT id FROM runs WHERE task_id = ? AND status = 'succeeded'", task["id"]
                )
            await call_ok(client, "pause_task", {"task_id": tasks[0]["id"]})
            await call_ok(client, "cancel_task", {"task_id": tasks[1]["id"]})
            counts = [runs_of(database, task["id"]) for task in tasks[:2]]
            await call_ok(client, "delete_task", {"task_id": tasks[2]["id"]})
            # A negative check needs time to pass: three more fire times, as a task nobody touched
            # counts them, while three processes poll the file.
            witnessed = runs_of(database, witness["id"])
            with anyio.fail_after(60):
                while True:
                    if runs_of(database, witness["id"]) >= witnessed + 3:
                        break
                    await anyio.sleep(0.1)
            assert [runs_of(database, task["id"]) for task in tasks[:2]] == counts
            assert runs_of(database, tasks[2]["id"]) == 0
            assert all(process.poll() is None for process in others)
    finally:
        for process in others:
            kill(process)

"""SIGTERM on `orchestrator-mcp serve`: stop claiming, give runs the grace, mark the rest, exit 0."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from tests.conftest import call_ok
from tests.reliability.support import connect, kill, start, terminate, wait_for

pytestmark = pytest.mark.slow  # spawns server processes


async def test_sigterm_interrupts_a_run_still_going_after_the_grace_and_exits_zero(tmp_path: Path) -> None:
    database = tmp_path / "shutdown.db"
    # Fired by the server under test, not by the short-lived one that creates the task.
    soon = datetime.now(UTC) + timedelta(seconds=4)
    async with connect(database) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "long",
                "schedule": {"kind": "once", "expr": soon.isoformat()},
                "pipeline": [{"id": "nap", "uses": "core.sleep", "with": {"seconds": 60}}],
            },
        )
    server = start(database, ORCH_SHUTDOWN_GRACE_SECONDS="1")
    try:
        (run,) = wait_for(
            database, "SELECT id FROM runs WHERE task_id = ? AND status = 'running'", task["id"]
        )
        wait_for(database, "SELECT 1 FROM steps WHERE run_id = ? AND status = 'running'", run["id"])
        began = time.monotonic()
        code = terminate(server)
        took = time.monotonic() - began
    finally:
        if server.poll() is None:
            kill(server)
    assert code == 0
    assert took < 8, f"the server took {took:.1f}s to stop with a 1s grace"
    (row,) = wait_for(database, "SELECT status, error, instance_id FROM runs WHERE id = ?", run["id"])
    assert row["status"] == "interrupted"
    assert "shutdown" in json.loads(row["error"])["message"]
    instances = wait_for(database, "SELECT count(*) AS n FROM instances")
    assert instances[0]["n"] == 0, "a stopped server removes its instance row"


async def test_sigterm_on_an_idle_server_exits_zero_at_once(tmp_path: Path) -> None:
    database = tmp_path / "idle.db"
    server = start(database)
    try:
        wait_for(database, "SELECT id FROM instances")
        began = time.monotonic()
        assert terminate(server) == 0
        assert time.monotonic() - began < 5
    finally:
        if server.poll() is None:
            kill(server)


async def test_sigterm_lets_a_run_finish_within_the_grace(tmp_path: Path) -> None:
    database = tmp_path / "graceful.db"
    soon = datetime.now(UTC) + timedelta(seconds=4)
    async with connect(database) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "short",
                "schedule": {"kind": "once", "expr": soon.isoformat()},
                "pipeline": [
                    {"id": "nap", "uses": "core.sleep", "with": {"seconds": 2}},
                    {"id": "after", "uses": "core.noop"},
                ],
            },
        )
    server = start(database, ORCH_SHUTDOWN_GRACE_SECONDS="20")
    try:
        (run,) = wait_for(
            database, "SELECT id FROM runs WHERE task_id = ? AND status = 'running'", task["id"]
        )
        code = terminate(server)
    finally:
        if server.poll() is None:
            kill(server)
    assert code == 0
    (row,) = wait_for(database, "SELECT status FROM runs WHERE id = ?", run["id"])
    assert row["status"] == "succeeded"
    steps = wait_for(database, "SELECT status FROM steps WHERE run_id = ? ORDER BY seq", run["id"])
    assert [step["status"] for step in steps] == ["succeeded", "succeeded"]


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.3])
async def test_sigterm_during_start_up_still_ends_the_process(tmp_path: Path, delay: float) -> None:
    server = start(tmp_path / "starting.db")
    try:
        await anyio.sleep(delay)  # somewhere in imports, the store's migration or the engine's first beat
        code = terminate(server, timeout=15)
    finally:
        if server.poll() is None:
            kill(server)
    assert code in (0, -15)  # -15: the signal came before the server installed its handler

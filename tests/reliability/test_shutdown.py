"""SIGTERM on `orchestrator-mcp serve`: stop claiming, give runs the grace, mark the rest, exit 0."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from tests.conftest import call_ok
from tests.reliability.support import START_WITHIN, connect, kill, ready, start, terminate, wait_for

pytestmark = pytest.mark.slow  # spawns server processes


async def test_sigterm_interrupts_a_run_still_going_after_the_grace_and_exits_zero(tmp_path: Path) -> None:
    database = tmp_path / "shutdown.db"
    async with connect(database) as client:
        # Fired by the server under test, not by the short-lived one that creates the task.
        soon = datetime.now(UTC) + timedelta(seconds=4)
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
        await ready(server)
        (run,) = await wait_for(
            database, "SELECT id FROM runs WHERE task_id = ? AND status = 'running'", task["id"]
        )
        await wait_for(database, "SELECT 1 FROM steps WHERE run_id = ? AND status = 'running'", run["id"])
        began = time.monotonic()
        code = terminate(server)
        took = time.monotonic() - began
    finally:
        if server.poll() is None:
            kill(server)
    assert code == 0
    assert took < 8, f"the server took {took:.1f}s to stop with a 1s grace"
    (row,) = await wait_for(database, "SELECT status, error, instance_id FROM runs WHERE id = ?", run["id"])
    assert row["status"] == "interrupted"
    assert "shutdown" in json.loads(row["error"])["message"]
    instances = await wait_for(database, "SELECT count(*) AS n FROM instances")
    assert instances[0]["n"] == 0, "a stopped server removes its instance row"


async def test_sigterm_on_an_idle_server_exits_zero_at_once(tmp_path: Path) -> None:
    database = tmp_path / "idle.db"
    server = start(database)
    try:
        await ready(server)
        began = time.monotonic()
        assert terminate(server) == 0
        assert time.monotonic() - began < 5
    finally:
        if server.poll() is None:
            kill(server)


async def test_sigterm_lets_a_run_finish_within_the_grace(tmp_path: Path) -> None:
    database = tmp_path / "graceful.db"
    async with connect(database) as client:
        soon = datetime.now(UTC) + timedelta(seconds=4)  # after this client's server has stopped
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
        await ready(server)
        (run,) = await wait_for(
            database, "SELECT id FROM runs WHERE task_id = ? AND status = 'running'", task["id"]
        )
        code = terminate(server)
    finally:
        if server.poll() is None:
            kill(server)
    assert code == 0
    (row,) = await wait_for(database, "SELECT status FROM runs WHERE id = ?", run["id"])
    assert row["status"] == "succeeded"
    steps = await wait_for(database, "SELECT status FROM steps WHERE run_id = ? ORDER BY seq", run["id"])
    assert [step["status"] for step in steps] == ["succeeded", "succeeded"]


async def database_exists(database: Path) -> None:
    with anyio.fail_after(START_WITHIN):
        while True:
            if await anyio.Path(database).exists():
                return
            await anyio.sleep(0.01)


@pytest.mark.parametrize("moment", ["spawned", "opening its database", "ready"])
async def test_sigterm_during_start_up_still_ends_the_process(tmp_path: Path, moment: str) -> None:
    """SIGTERM at three moments of start-up: right after the spawn (during imports, maybe before the
    handler exists), once the store has created its file (mid-migration), and once it is ready."""
    database = tmp_path / "starting.db"
    server = start(database)
    try:
        if moment == "opening its database":
            await database_exists(database)
        elif moment == "ready":
            await ready(server)
        # An exit takes a second or two; the bound is short only because the known bug hangs here.
        code = terminate(server, timeout=20)
    finally:
        if server.poll() is None:
            kill(server)
    if moment == "spawned":
        assert code in (0, -15)  # -15: the signal came before the server installed its handler
    else:
        assert code == 0  # the handler is installed before the store is opened

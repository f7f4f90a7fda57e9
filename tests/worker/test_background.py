"""Tasks keep firing with no client: `serve` over stdio leaves a background worker for its SQLite
file, which `worker --status` shows and `worker --stop` ends, leaving no process behind."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import RunRow
from orchestrator_mcp.worker.lock import WorkerLock, alive
from tests.cli.support import cli
from tests.conftest import call_ok
from tests.reliability.support import READY, ServerProcess, ready, server_env, start, terminate

pytestmark = pytest.mark.slow  # spawns server and worker processes

TICK = {
    "title": "tick",
    "schedule": {"kind": "interval", "expr": "1s"},
    "pipeline": [{"id": "noop", "uses": "core.noop"}],
}


@contextmanager
def no_worker_left(database: Path) -> Iterator[None]:
    """Whatever the test does, the worker of `database` is gone after it."""
    try:
        yield
    finally:
        record = WorkerLock(database).holder()
        if record is not None and record.pid > 0:
            os.kill(record.pid, signal.SIGKILL)


def gone(pid: int) -> bool:
    """No such process, or one that has ended and waits only to be reaped (a zombie)."""
    if not alive(pid):
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


async def runs_of(url: str, task_id: str, status: str | None = "succeeded") -> list[RunRow]:
    store = await SqlStore.open(url)
    try:
        return await store.list_runs(None, task_id, status, None, 10_000, None)
    finally:
        await store.close()


async def instance_pids(url: str) -> dict[str, int]:
    """The pid of each live instance, by instance id."""
    store = await SqlStore.open(url)
    try:
        return {
            row.id: row.pid for row in await store.list_instances(datetime.now(UTC) - timedelta(minutes=1))
        }
    finally:
        await store.close()


async def test_a_one_second_task_keeps_firing_after_its_client_leaves_until_worker_stop(
    tmp_path: Path,
) -> None:
    database = tmp_path / "unattended.db"
    url = f"sqlite:///{database}"
    env = server_env(database, ORCH_BACKGROUND_WORKER="auto")
    parameters = StdioServerParameters(
        command=sys.executable, args=["-m", "orchestrator_mcp", "serve"], env=env
    )
    with no_worker_left(database):
        async with Client(parameters) as client:
            task = await call_ok(client, "schedule_task", TICK)
        left_at = datetime.now(UTC)  # the server process has exited with its client
        record = WorkerLock(database).holder()
        assert record is not None and record.mode == "background"

        with anyio.fail_after(60):  # a bound for a loaded machine: four runs take four seconds
            while True:
                later = [
                    run
                    for run in await runs_of(url, task["id"])
                    if run.started_at is not None and run.started_at > left_at
                ]
                if len(later) >= 4:
                    break
                await anyio.sleep(0.25)
        pids = await instance_pids(url)
        assert {pids.get(run.instance_id or "") for run in later} == {record.pid}  # all by the worker
        every = [run for run in await runs_of(url, task["id"], status=None) if run.scheduled_for > left_at]
        fire_times = sorted(run.scheduled_for for run in every)
        # Each fire time has its record (a run, or a skip if the one before was still going): none lost.
        assert all(b - a == timedelta(seconds=1) for a, b in zip(fire_times, fire_times[1:], strict=False))

        status = cli("worker", "--status", env=env)
        assert status.returncode == 0, status.stderr
        assert f"pid {record.pid} (background" in status.stdout

        stopped = cli("worker", "--stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert f"(pid {record.pid})" in stopped.stdout
        assert gone(record.pid)
        assert WorkerLock(database).holder() is None
        assert cli("worker", "--status", env=env).returncode == 3
        assert record.pid not in (await instance_pids(url)).values()  # it drained and left


async def test_two_clients_starting_at_once_leave_one_worker(tmp_path: Path) -> None:
    database = tmp_path / "race.db"
    with no_worker_left(database):
        servers = [start(database, ORCH_BACKGROUND_WORKER="auto", ORCH_LOG_LEVEL="INFO") for _ in range(2)]
        try:
            for server in servers:
                await ready(server)
            modes = sorted(ready_line(server).split("worker mode ")[1] for server in servers)
        finally:
            for server in servers:
                terminate(server)
        record = WorkerLock(database).holder()
        assert record is not None
        assert modes == [
            f"background worker (pid {record.pid}, already running)",
            f"background worker (pid {record.pid}, started)",
        ]
        assert cli("worker", "--stop", env=server_env(database)).returncode == 0
        assert gone(record.pid)


async def test_a_worker_started_by_hand_takes_over_from_the_background_one(tmp_path: Path) -> None:
    database = tmp_path / "takeover.db"
    env = server_env(database, ORCH_LOG_LEVEL="INFO")
    with no_worker_left(database):
        server = start(database, ORCH_BACKGROUND_WORKER="auto")
        try:
            await ready(server)
        finally:
            terminate(server)
        background = WorkerLock(database).holder()
        assert background is not None and background.mode == "background"

        worker = start(database, command="worker", ORCH_LOG_LEVEL="INFO")
        try:
            await ready(worker)
            assert gone(background.pid)
            record = WorkerLock(database).holder()
            assert record is not None and (record.pid, record.mode) == (worker.pid, "foreground")
            assert f"worker mode foreground worker (pid {worker.pid})" in ready_line(worker)
            assert "transport none" in ready_line(worker)
            assert cli("worker", "--status", env=env).returncode == 0
        finally:
            assert terminate(worker) == 0
        assert WorkerLock(database).holder() is None


def ready_line(process: ServerProcess) -> str:
    (line,) = [line for line in process.log.read_text().splitlines() if READY in line]
    return line

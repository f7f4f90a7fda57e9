"""Real server processes on real files, and read-only checks of what they left in the database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

QUIET = {"ORCH_LOG_LEVEL": "ERROR", "ORCH_HEARTBEAT_SECONDS": "1", "ORCH_POLL_INTERVAL_SECONDS": "0.2"}
READY = " ready: transport "
"""In the line a server writes to stderr once it serves, its signal handlers installed (SPEC §13)."""
START_WITHIN = 60
"""Seconds a server process may take to be ready: a bound for a loaded machine, not an expectation."""


def server_env(database: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a server on a SQLite file (a Path) or on a database URL (a str)."""
    url = database if isinstance(database, str) else f"sqlite+aiosqlite:///{database}"
    return {**os.environ, "ORCH_DATABASE_URL": url, **QUIET, **extra}


@asynccontextmanager
async def connect(database: Path | str, mode: str = "legacy", **env: str) -> AsyncIterator[Client]:
    """A server process driven by the SDK's client over stdio; it exits when the client closes."""
    parameters = StdioServerParameters(
        command=sys.executable, args=["-m", "orchestrator_mcp", "serve"], env=server_env(database, **env)
    )
    async with Client(parameters, mode=mode) as client:
        yield client


class ServerProcess(subprocess.Popen[bytes]):
    """A server process whose stderr goes to a file (`log`), where its ready line is looked for."""

    log: Path


def start(database: Path | str, command: str = "serve", **env: str) -> ServerProcess:
    """A server process (or another `command`, such as `worker`) with nobody talking to it: its
    stdin stays open, so only the engine works.

    It is not ready yet: `await ready(process)` before counting on it (or on its signal handler).
    """
    folder = database.parent if isinstance(database, Path) else None
    descriptor, name = tempfile.mkstemp(prefix="server-", suffix=".stderr", dir=folder)
    with open(descriptor, "wb") as sink:  # the child keeps its own descriptor
        process = ServerProcess(
            [sys.executable, "-m", "orchestrator_mcp", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=server_env(database, **env),
        )
    process.log = Path(name)
    return process


async def ready(process: ServerProcess, within: float = START_WITHIN) -> None:
    """Wait until `process` has written its ready line; fail at once if it exits first."""
    log = anyio.Path(process.log)
    with anyio.fail_after(within):
        while True:
            if READY in await log.read_text(errors="replace"):
                return
            if process.poll() is not None:
                raise AssertionError(f"exited {process.returncode} before ready:\n{await log.read_text()}")
            await anyio.sleep(0.05)


def terminate(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM, then wait for the exit code (the stdin pipe is closed only afterwards)."""
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout)
    assert process.stdin is not None
    process.stdin.close()
    return code


def kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(10)
    assert process.stdin is not None
    process.stdin.close()


@contextmanager
def read_only(database: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        yield conn


def query(database: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    with read_only(database) as conn:
        return list(conn.execute(sql, args))


async def wait_for(database: Path, sql: str, *args: Any, within: float = 60) -> list[sqlite3.Row]:
    """Poll until `sql` returns rows (tolerates the file not existing yet); `within` is only a bound."""
    with anyio.fail_after(within):
        while True:
            try:
                rows = query(database, sql, *args)
            except sqlite3.OperationalError:
                rows = []
            if rows:
                return rows
            await anyio.sleep(0.05)


def stored_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


@dataclass
class FireCheck:
    """Every scheduled fire time of a task: at most one run each, none lost."""

    fire_times: int = 0
    duplicates: list[tuple[str, datetime]] = field(default_factory=list)
    lost: list[tuple[str, datetime]] = field(default_factory=list)
    misfire_records: int = 0
    lateness: list[float] = field(default_factory=list)  # started_at - scheduled_for, in seconds

    def tally(self, by_task: dict[str, dict[datetime, int]], step: timedelta) -> None:
        """Walk each task's fire times from its first run to its last, `step` apart: a time with two
        runs (or records) is a duplicate, one with none is lost."""
        for task_id, times in by_task.items():
            self.duplicates += [(task_id, moment) for moment, n in times.items() if n > 1]
            moment, last = min(times), max(times)
            while moment <= last:
                self.fire_times += 1
                if moment not in times:
                    self.lost.append((task_id, moment))
                moment += step


def check_fire_times(database: Path, step: timedelta) -> FireCheck:
    """Check the `schedule` runs of every interval task between its first and last fire time.

    A fire time is explained by a run at that time, or by a `skipped` run (an overlap or misfire
    record) standing for it: `skipped_fires` times, `step` apart, from `scheduled_for` to
    `last_scheduled_for`.
    """
    rows = query(
        database,
        "SELECT task_id, scheduled_for, fire_key, status, skipped_fires, last_scheduled_for FROM runs "
        "WHERE trigger = 'schedule'",
    )
    check = FireCheck()
    by_task: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        first = stored_time(row["scheduled_for"])
        if row["fire_key"].startswith("missed:"):
            check.misfire_records += 1
        if row["status"] != "skipped":
            by_task[row["task_id"]][first] += 1
            continue
        times = [first + n * step for n in range(row["skipped_fires"])]
        assert times[-1] == stored_time(row["last_scheduled_for"]), dict(row)
        for moment in times:
            by_task[row["task_id"]][moment] += 1
    check.tally(by_task, step)
    return check

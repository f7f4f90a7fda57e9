"""Shared helpers: statistics, throw-away databases, bulk rows, the stdio server and its memory."""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import Connection, Engine, create_engine, event, insert, select

from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunStatus, Trigger
from orchestrator_mcp.domain.schedule import Schedule, first_fire_time, schedule_anchor
from orchestrator_mcp.engine.scheduler import new_run, run_values
from orchestrator_mcp.ids import new_id
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.engine import IMMEDIATE
from orchestrator_mcp.store.sql import RUNS, STEPS, SqlStore
from orchestrator_mcp.store.tables import TaskRow

NOOP_PIPELINE: list[dict[str, Any]] = [{"id": "n", "uses": "core.noop"}]


# -- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max (and count) of durations given in seconds, in milliseconds."""
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3) if seconds else math.nan,
    }


# -- databases ----------------------------------------------------------------------------------


@contextmanager
def temp_database(name: str) -> Iterator[tuple[str, Path]]:
    """A fresh SQLite file: (async URL for the server, path)."""
    with tempfile.TemporaryDirectory(prefix=f"orch-bench-{name}-") as directory:
        path = Path(directory) / "orchestrator.db"
        yield f"sqlite+aiosqlite:///{path}", path


async def create_schema(url: str) -> None:
    """Create the tables the way the server does (through the store's migration)."""
    store = await SqlStore.open(url)
    await store.close()


def sync_engine(path: Path) -> Engine:
    """A synchronous engine on the same file, WAL like the server's, for bulk inserts and reads."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def task_template(
    schedule: dict[str, Any], now: datetime, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A task row as `schedule_task` would store it (validated through the domain models)."""
    parsed = Schedule.model_validate(schedule)
    parsed_policy = Policy.model_validate(policy or {})
    first = first_fire_time(parsed, now)
    row = TaskRow(
        id=new_id("task"),
        owner="local",
        title="bench",
        description="",
        status="active",
        schedule=parsed.model_dump(mode="json"),
        anchor=schedule_anchor(parsed, now, first),
        pipeline=list(NOOP_PIPELINE),
        on_failure=None,
        params={},
        output=None,
        policy=parsed_policy.model_dump(mode="json", exclude_unset=True),
        next_run_at=first,
        created_at=now,
        updated_at=now,
    )
    return row.model_dump()


def insert_rows(engine: Engine, table: Any, rows: Sequence[dict[str, Any]], chunk: int = 20_000) -> None:
    """Bulk insert (executemany), one transaction per chunk."""
    for start in range(0, len(rows), chunk):
        with engine.begin() as conn:
            conn.execute(insert(table), list(rows[start : start + chunk]))


def once_tasks(count: int, due: datetime, now: datetime) -> list[dict[str, Any]]:
    """`count` tasks with a `once` schedule at `due` (whole second), one core.noop step each."""
    template = task_template({"kind": "once", "expr": due.strftime("%Y-%m-%dT%H:%M:%SZ")}, now)
    rows = []
    for i in range(count):
        row = dict(template)
        row["id"] = new_id("task")
        row["title"] = f"due {i}"
        rows.append(row)
    return rows


def idle_tasks(count: int, now: datetime) -> list[dict[str, Any]]:
    """`count` active hourly-interval tasks whose next fire is 10 min to 24 h away (none fire in a run)."""
    template = task_template({"kind": "interval", "expr": "1h"}, now)
    rows = []
    for i in range(count):
        row = dict(template)
        row["id"] = new_id("task")
        row["title"] = f"idle task {i}"
        when = now + timedelta(minutes=10) + timedelta(seconds=(i * 7919) % 86_000)
        row["anchor"] = row["next_run_at"] = when.replace(microsecond=0)
        rows.append(row)
    return rows


def manual_backlog(tasks: int, runs: int, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`tasks` manual tasks (overlap `allow`) and about `runs` queued runs spread over them."""
    rows = []
    for i in range(tasks):
        task = task_template({"kind": "manual"}, now, {"overlap": "allow"})
        task["id"] = f"{task['id']}{i:03d}"
        rows.append(task)
    share = -(-runs // tasks)
    return rows, [run for task in rows for run in queued_runs(task, share, now)]


def queued_runs(task: dict[str, Any], count: int, now: datetime) -> list[dict[str, Any]]:
    """`count` manual runs of `task`, queued and ready, as `run_now` inserts them."""
    policy = Policy.model_validate(task["policy"])
    row = TaskRow(**task)
    return [run_values(row, Trigger.MANUAL, now, now, policy, {}) for _ in range(count)]


def finished_runs(tasks: Sequence[dict[str, Any]], count: int, now: datetime) -> list[dict[str, Any]]:
    """`count` succeeded scheduled runs spread over `tasks` and the last 30 days."""
    policy = Policy()
    models = [TaskRow(**task) for task in tasks]
    template = new_run(models[0], Trigger.SCHEDULE, now, now, policy, {}).model_dump()
    rows = []
    for i in range(count):
        task = models[i % len(models)]
        at = now - timedelta(seconds=(count - i) * 2_592_000 / count)
        row = dict(template)
        row.update(
            id=new_id("run") + f"{i:06x}",
            task_id=task.id,
            fire_key=f"f{i}",
            scheduled_for=at,
            not_before=at,
            queued_at=at,
            started_at=at,
            finished_at=at + timedelta(milliseconds=5),
            duration_ms=5,
            status=RunStatus.SUCCEEDED.value,
            steps_completed=1,
            steps_total=1,
            output={},
        )
        rows.append(row)
    return rows


def count_status(path: Path, status: str) -> int:
    """Runs in `status`, read with a plain sqlite3 connection (cheap, for polling)."""
    with sqlite3.connect(path, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM runs WHERE status = ?", (status,)).fetchone()[0])


def run_times(engine: Engine) -> list[dict[str, Any]]:
    """scheduled_for, started_at, finished_at and the first step's start of every run (aware UTC)."""
    with engine.connect() as conn:
        runs = conn.execute(
            select(RUNS.c.id, RUNS.c.status, RUNS.c.scheduled_for, RUNS.c.started_at, RUNS.c.finished_at)
        ).all()
        steps = conn.execute(select(STEPS.c.run_id, STEPS.c.started_at).where(STEPS.c.seq == 0)).all()
    step_start = dict(steps)  # noqa: C416
    return [
        {
            "id": run.id,
            "status": run.status,
            "scheduled_for": run.scheduled_for,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "step_started_at": step_start.get(run.id),
        }
        for run in runs
    ]


def utcnow() -> datetime:
    return datetime.now(UTC)


def next_whole_second(lead_seconds: float) -> datetime:
    """The first whole second at least `lead_seconds` from now."""
    moment = utcnow() + timedelta(seconds=lead_seconds)
    return moment.replace(microsecond=0) + timedelta(seconds=1)


async def wait_for_count(path: Path, status: str, target: int, limit_seconds: float) -> float | None:
    """Poll until `target` runs are in `status`; returns the wall time it was seen, None on timeout."""
    with anyio.move_on_after(limit_seconds):
        while True:
            if await anyio.to_thread.run_sync(count_status, path, status) >= target:
                return time.time()
            await anyio.sleep(0.1)
    return None


# -- the server as a subprocess -----------------------------------------------------------------


def stdio_parameters(database_url: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator_mcp", "serve"],
        # No background worker: it would execute runs beside the process measured, and outlive it.
        env={
            **os.environ,
            "ORCH_DATABASE_URL": database_url,
            "ORCH_LOG_LEVEL": "WARNING",
            "ORCH_BACKGROUND_WORKER": "off",
            **env,
        },
    )


@asynccontextmanager
async def stdio_server(database_url: str, **env: str) -> AsyncIterator[Client]:
    """`python -m orchestrator_mcp serve` over stdio, through the SDK client."""
    async with Client(stdio_parameters(database_url, **env)) as client:
        yield client


@asynccontextmanager
async def http_server(database_url: str, auth: bool = True) -> AsyncIterator[Client]:
    """`orchestrator-mcp serve --transport http` on a free loopback port (with a bearer token made by
    `token create`, or `--no-auth`), through the SDK client over streamable HTTP. The per-principal
    rate limit is lifted: a latency run makes more than its default 600 calls a minute."""
    env = {
        **os.environ,
        "ORCH_DATABASE_URL": database_url,
        "ORCH_LOG_LEVEL": "WARNING",
        "ORCH_RATE_LIMIT": "1000000",
    }
    command = [sys.executable, "-m", "orchestrator_mcp"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = [*command, "serve", "--transport", "http", "--port", str(port)]
    headers = {}
    if auth:
        scopes = "tasks:read,tasks:write,runs:read,runs:write,catalog:read"
        made = await anyio.run_process(
            [*command, "token", "create", "--principal", "local", "--scopes", scopes], env=env
        )
        headers["Authorization"] = f"Bearer {made.stdout.decode().strip().splitlines()[-1]}"
    else:
        serve.append("--no-auth")
    server = await anyio.open_process(serve, env=env, stdin=None, stdout=DEVNULL, stderr=DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
            with anyio.fail_after(30):
                while True:
                    try:
                        if (await http.get(f"{base}/health/ready")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.1)
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
                yield client
    finally:
        server.terminate()
        await server.wait()


def children_pids() -> list[int]:
    """Pids of this process's direct children (read from /proc)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: the ppid follows the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


def server_pid() -> int | None:
    """The pid of the `orchestrator_mcp serve` child, if there is one."""
    for pid in children_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"orchestrator_mcp" in cmdline:
            return pid
    return None


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


@dataclass
class Counter:
    """Counts transactions (all / write) and statements on every engine of this process, including the
    statements run straight on sqlite3's cursor (`DirectStatement`), which SQLAlchemy does not see."""

    begins: int = 0
    writes: int = 0
    statements: int = 0

    def install(self) -> None:
        event.listen(Engine, "begin", self._begin)
        event.listen(Engine, "before_cursor_execute", self._statement)
        self._direct = {name: getattr(DirectStatement, name) for name in ("executemany", "first")}
        for name, method in self._direct.items():
            setattr(DirectStatement, name, self._counting(method))

    def remove(self) -> None:
        event.remove(Engine, "begin", self._begin)
        event.remove(Engine, "before_cursor_execute", self._statement)
        for name, method in self._direct.items():
            setattr(DirectStatement, name, method)

    def _counting(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.statements += 1
            return method(*args)

        return counted

    def _begin(self, conn: Connection) -> None:
        self.begins += 1
        self.writes += bool(conn.get_execution_options().get(IMMEDIATE, False))

    def _statement(self, *_: Any) -> None:
        self.statements += 1

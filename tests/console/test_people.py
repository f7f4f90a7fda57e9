"""`tasks`, `runs` and `logs` for people: tables, and `--json` equal to what the tools return for
the same records (the commands run as subprocesses on the database an in-process server wrote)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import TextResourceContents

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from tests.cli.support import cli, one_line_error
from tests.conftest import call_ok
from tests.reliability.support import ready, start, terminate

pytestmark = pytest.mark.slow  # spawns processes

NOOP = [
    {"id": "first", "uses": "core.echo", "with": {"n": 1}, "save_as": "first"},
    {"id": "then", "uses": "core.noop"},
]
FAILING = [{"id": "boom", "uses": "core.fail", "with": {"message": "it broke"}}]


def people(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, env={"ORCH_DATABASE_URL": settings.database_url})


def json_of(settings: Settings, *args: str) -> Any:
    done = people(settings, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def two_tasks_with_runs(settings: Settings) -> dict[str, Any]:
    async with Client(create_server(settings)) as client:
        hourly = await call_ok(
            client,
            "schedule_task",
            {"title": "Hourly echo", "schedule": {"kind": "interval", "expr": "1h"}, "pipeline": NOOP},
        )
        failing = await call_ok(
            client, "schedule_task", {"title": "Breaks", "schedule": {"kind": "manual"}, "pipeline": FAILING}
        )
        good = await call_ok(client, "run_now", {"task_id": hourly["id"], "wait": True})
        bad = await call_ok(client, "run_now", {"task_id": failing["id"], "wait": True})
        log = (await client.read_resource(good["log_uri"])).contents[0]
        assert isinstance(log, TextResourceContents)
        return {
            "hourly": hourly["id"],
            "failing": failing["id"],
            "good": good["id"],
            "bad": bad["id"],
            "log": log.text,
        }


async def tool(settings: Settings, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    async with Client(create_server(settings)) as client:
        return await call_ok(client, name, arguments)


async def test_json_of_each_command_is_what_the_matching_tool_returns(settings: Settings) -> None:
    made = await two_tasks_with_runs(settings)
    assert json_of(settings, "tasks", "list") == await tool(settings, "list_tasks")
    assert json_of(settings, "tasks", "list", "--status", "active", "--limit", "1") == await tool(
        settings, "list_tasks", {"status": "active", "limit": 1}
    )
    assert json_of(settings, "tasks", "show", made["hourly"]) == await tool(
        settings, "get_task", {"task_id": made["hourly"]}
    )
    assert json_of(settings, "runs", "list") == await tool(settings, "list_runs")
    assert json_of(settings, "runs", "list", "--task", made["failing"], "--status", "failed") == await tool(
        settings, "list_runs", {"task_id": made["failing"], "status": "failed"}
    )
    shown = json_of(settings, "runs", "show", made["bad"])
    assert shown == await tool(settings, "get_run", {"run_id": made["bad"]})
    assert shown["error"]["message"] == "it broke"

    paused = json_of(settings, "tasks", "pause", made["hourly"])
    assert paused["status"] == "paused"
    assert paused == await tool(settings, "get_task", {"task_id": made["hourly"]})
    resumed = json_of(settings, "tasks", "resume", made["hourly"])
    assert resumed["status"] == "active"

    log = people(settings, "logs", made["good"])
    assert log.returncode == 0 and log.stdout == made["log"]


async def test_tables_for_people_and_one_line_errors(settings: Settings) -> None:
    made = await two_tasks_with_runs(settings)
    tasks = people(settings, "tasks", "list")
    assert tasks.returncode == 0
    header, *rows = tasks.stdout.strip().splitlines()
    assert header.split()[:3] == ["ID", "TITLE", "STATUS"]
    assert any(made["hourly"] in row and "Hourly echo" in row and "Every hour" in row for row in rows)
    run = people(settings, "runs", "show", made["bad"])
    assert run.returncode == 0
    assert "tool_error at step boom: it broke" in run.stdout and "core.fail" in run.stdout
    runs = people(settings, "runs", "list", "--status", "failed").stdout
    assert made["bad"] in runs and made["good"] not in runs

    assert "run 'run_nope' not found" in one_line_error(people(settings, "runs", "show", "run_nope"), code=1)
    assert "task 'task_nope' not found" in one_line_error(
        people(settings, "tasks", "pause", "task_nope"), code=1
    )
    assert "--limit: expected a whole number from 1 to 200" in one_line_error(
        people(settings, "runs", "list", "--limit", "0")
    )


async def test_tasks_run_queues_a_run_that_a_worker_executes_and_logs_follow_it_to_its_end(
    settings: Settings,
) -> None:
    async with Client(create_server(settings)) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "Naps",
                "schedule": {"kind": "manual"},
                "pipeline": [
                    {"id": "nap", "uses": "core.sleep", "with": {"seconds": 1.5}},
                    {"id": "done", "uses": "core.echo", "with": {"ok": True}},
                ],
            },
        )
    alone = people(settings, "tasks", "run", task["id"], "--json")
    assert alone.returncode == 0
    assert "no process runs tasks on this database now" in alone.stderr
    queued = json.loads(alone.stdout)
    assert queued["status"] == "queued"

    # Followed from while it waits in the queue, through its steps, to its end.
    command = [sys.executable, "-m", "orchestrator_mcp", "logs", queued["id"], "--follow"]
    async with await anyio.open_process(
        [*command, "--database-url", settings.database_url], stdin=subprocess.DEVNULL
    ) as follow:
        worker = start(settings.database_url, command="worker", ORCH_LOG_LEVEL="INFO")
        try:
            await ready(worker)
            assert follow.stdout is not None
            with anyio.fail_after(60):  # it ends by itself when the run ends
                followed = ""
                async for chunk in follow.stdout:
                    followed += chunk.decode()
                assert await follow.wait() == 0
            waited = people(settings, "tasks", "run", task["id"], "--wait", "--json")
        finally:
            assert terminate(worker) == 0
    assert waited.returncode == 0, waited.stderr
    assert waited.stderr == ""  # a worker runs: no warning
    ran = json.loads(waited.stdout)
    assert ran["status"] == "succeeded" and ran["steps_completed"] == 2
    assert ran == await tool(settings, "get_run", {"run_id": ran["id"]})
    assert (await tool(settings, "get_run", {"run_id": queued["id"]}))["status"] == "succeeded"
    assert "[step nap] calling core.sleep" in followed and followed.rstrip().endswith("run succeeded")

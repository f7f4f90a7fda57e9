"""The real thing: `orchestrator-mcp serve` as a subprocess, driven by the SDK's client over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp_types import ResourceUpdatedNotification, TextResourceContents

from tests.conftest import call_error, call_ok, echo_pipeline
from tests.watching import watch_a_run

pytestmark = pytest.mark.slow  # spawns server processes

MODES = ["legacy", "auto"]


@asynccontextmanager
async def serve(database_url: str, mode: str, **env: str) -> AsyncIterator[Client]:
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator_mcp", "serve"],
        env={**os.environ, "ORCH_DATABASE_URL": database_url, "ORCH_LOG_LEVEL": "WARNING", **env},
    )
    async with Client(parameters, mode=mode) as client:
        yield client


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


@pytest.mark.parametrize("mode", MODES)
async def test_a_one_second_interval_task_runs_three_times_on_time(database_url: str, mode: str) -> None:
    async with serve(database_url, mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "tick",
                "schedule": {"kind": "interval", "expr": "1s"},
                "pipeline": [{"id": "noop", "uses": "core.noop"}],
            },
        )
        with anyio.fail_after(15):
            while True:
                runs = (await call_ok(client, "list_runs", {"task_id": task["id"], "status": "succeeded"}))[
                    "runs"
                ]
                if len(runs) >= 3:
                    break
                await anyio.sleep(0.2)
        runs = sorted(runs, key=lambda run: run["scheduled_for"])[:3]
        fire_times = [parse(run["scheduled_for"]) for run in runs]
        gaps = [
            (later - earlier).total_seconds()
            for earlier, later in zip(fire_times, fire_times[1:], strict=False)
        ]
        assert gaps == [1.0, 1.0]
        lateness = [(parse(run["started_at"]) - parse(run["scheduled_for"])).total_seconds() for run in runs]
        assert all(0 <= late < 0.5 for late in lateness), lateness
        assert all(run["trigger"] == "schedule" for run in runs)


@pytest.mark.parametrize("mode", MODES)
async def test_tools_resources_prompts_and_completions_over_stdio(database_url: str, mode: str) -> None:
    async with serve(database_url, mode) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "echo",
                "schedule": {"kind": "manual"},
                "pipeline": echo_pipeline(greeting="hi ${{ params.who }}"),
                "params": {"who": "you"},
            },
        )
        run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
        assert run["status"] == "succeeded"
        assert run["output"] == {"echoed": {"greeting": "hi you"}}

        log = await client.read_resource(run["log_uri"])
        text = log.contents[0]
        assert isinstance(text, TextResourceContents)
        assert "INFO [step echo] calling core.echo" in text.text
        assert text.text.splitlines()[0].split(" ")[0].endswith("Z")

        task_resource = await client.read_resource(f"orchestrator://tasks/{task['id']}")
        assert task["id"] in task_resource.contents[0].text  # type: ignore[union-attr]
        run_resource = await client.read_resource(f"orchestrator://runs/{run['id']}")
        assert '"status": "succeeded"' in run_resource.contents[0].text  # type: ignore[union-attr]
        catalog = await client.read_resource("orchestrator://catalog")
        assert "core.echo" in catalog.contents[0].text  # type: ignore[union-attr]

        listed = {str(resource.uri) for resource in (await client.list_resources()).resources}
        assert f"orchestrator://tasks/{task['id']}" in listed
        assert run["log_uri"] in listed
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "orchestrator://runs/{run_id}/log" in templates

        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert prompts == {"schedule_from_description", "diagnose_run"}
        guide = await client.get_prompt("schedule_from_description", {"request": "weather every morning"})
        assert "core.echo" in guide.messages[0].content.text  # type: ignore[union-attr]
        diagnosis = await client.get_prompt("diagnose_run", {"run_id": run["id"]})
        assert f"Diagnose run {run['id']} " in diagnosis.messages[0].content.text  # type: ignore[union-attr]

        assert "not found" in await call_error(client, "get_run", {"run_id": "run_nope"})
        assert (await call_ok(client, "server_status"))["queue"] == {"queued": 0, "running": 0}


@pytest.mark.parametrize("mode", MODES)
async def test_a_restart_keeps_tasks_runs_and_logs(tmp_path: Path, mode: str) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}"
    async with serve(database_url, mode) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "kept",
                "schedule": {"kind": "interval", "expr": "1h"},
                "pipeline": echo_pipeline(n=1),
            },
        )
        run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
        log_before = (await client.read_resource(run["log_uri"])).contents[0].text  # type: ignore[union-attr]
    async with serve(database_url, mode) as client:
        again = await call_ok(client, "get_task", {"task_id": task["id"]})
        assert again["next_run_at"] == task["next_run_at"]
        assert again["run_count"] == 1
        kept = await call_ok(client, "get_run", {"run_id": run["id"]})
        assert kept["status"] == "succeeded" and kept["steps"][0]["result"] == {"n": 1}
        assert (await client.read_resource(run["log_uri"])).contents[0].text == log_before  # type: ignore[union-attr]
        second = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
        assert second["status"] == "succeeded"


async def test_progress_notifications_follow_each_step_of_a_waited_run(database_url: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with serve(database_url, "legacy") as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "two steps",
                "schedule": {"kind": "manual"},
                "pipeline": [{"id": "a", "uses": "core.noop"}, {"id": "b", "uses": "core.noop"}],
            },
        )
        result = await client.call_tool(
            "run_now", {"task_id": task["id"], "wait": True}, progress_callback=on_progress
        )
        assert not result.is_error
    assert [(p, t) for p, t, _ in seen][:2] == [(1, 2), (2, 2)]
    assert seen[0][2] == "step a succeeded"


@pytest.mark.parametrize("mode", MODES)
async def test_a_subscriber_hears_a_run_that_another_process_executes(database_url: str, mode: str) -> None:
    heard: list[str] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            heard.append(message.params.uri)

    # The watcher's engine looks for work only every 30 s, so the worker executes the run.
    watcher_parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator_mcp", "serve"],
        env={**os.environ, "ORCH_DATABASE_URL": database_url, "ORCH_POLL_INTERVAL_SECONDS": "30"},
    )
    async with (
        serve(database_url, mode) as worker,
        Client(watcher_parameters, mode=mode, message_handler=on_message) as watcher,
    ):
        _, uri = await watch_a_run(worker, watcher, mode, heard, step_seconds=0.6, settle=1.0)
    assert heard.count(uri) >= 2, heard  # steps seen changing, then the end

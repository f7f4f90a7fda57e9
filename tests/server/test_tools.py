"""Every tool through a real MCP client session (in memory) on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import call_error, call_ok, echo_pipeline

MANUAL = {"kind": "manual"}


async def make_task(client: Client, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "title": "Echo",
        "schedule": MANUAL,
        "pipeline": echo_pipeline(city="${{ params.city }}"),
        "params": {"city": "Lyon"},
    } | overrides
    return await call_ok(client, "schedule_task", arguments)


async def test_tools_are_listed_with_descriptions_schemas_and_hints(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    expected = {
        "schedule_task",
        "validate_pipeline",
        "preview_schedule",
        "list_tasks",
        "get_task",
        "update_task",
        "pause_task",
        "resume_task",
        "cancel_task",
        "delete_task",
        "run_now",
        "list_runs",
        "get_run",
        "cancel_run",
        "list_catalog",
        "server_status",
    }
    assert expected <= set(tools)
    for name in expected:
        tool = tools[name]
        assert tool.description and "Example" in tool.description, name
        assert not tool.description.startswith(" ") and "\n        " not in tool.description, name
        assert tool.output_schema is not None, name
        assert "$ref" not in json.dumps(tool.output_schema), name  # self-contained: see views.View
        assert tool.annotations is not None, name
    assert tools["get_task"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["cancel_run"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert tools["delete_task"].annotations.destructive_hint is True  # type: ignore[union-attr]
    pipeline = tools["schedule_task"].input_schema["properties"]["pipeline"]
    assert pipeline["maxItems"] == 50
    assert "uses" in pipeline["items"]["properties"]


async def test_schedule_task_returns_the_task_and_get_task_reads_it_back(client: Client) -> None:
    task = await make_task(client, description="checks templating")
    assert task["status"] == "active"
    assert task["owner"] == "local"
    assert task["schedule_description"]
    assert task["next_run_at"] is None
    assert task["created_at"].endswith("Z")
    got = await call_ok(client, "get_task", {"task_id": task["id"]})
    assert task.pop("warnings") == [] and got == task  # a saved task also carries its warnings


async def test_run_now_with_wait_renders_templates_and_saves_results(client: Client) -> None:
    task = await make_task(client)
    run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True, "params": {"city": "Paris"}})
    assert run["status"] == "succeeded", run
    assert run["trigger"] == "manual"
    assert run["output"] == {"echoed": {"city": "Paris"}}
    assert run["steps"][0]["arguments"] == {"city": "Paris"}
    assert run["steps"][0]["status"] == "succeeded"
    assert run["log_uri"] == f"orchestrator://runs/{run['id']}/log"
    listed = await call_ok(client, "list_runs", {"task_id": task["id"]})
    assert [item["id"] for item in listed["runs"]] == [run["id"]]
    assert listed["runs"][0]["steps"] is None
    task_after = await call_ok(client, "get_task", {"task_id": task["id"]})
    assert (task_after["run_count"], task_after["success_count"], task_after["last_run_status"]) == (
        1,
        1,
        "succeeded",
    )


async def test_validate_pipeline_reports_every_problem_with_its_path(client: Client) -> None:
    result = await call_ok(
        client,
        "validate_pipeline",
        {
            "pipeline": [
                {"id": "a", "uses": "core.ecko"},
                {"id": "a", "uses": "core.sleep", "with": {}},
                {"id": "c", "uses": "core.echo", "if": "vars.x >", "with": {"t": "${{ oops( }}"}},
            ],
            "schedule": {"kind": "cron", "expr": "61 * * * *"},
        },
    )
    assert result["valid"] is False
    paths = {error["path"]: error["message"] for error in result["errors"]}
    assert "did you mean 'core.echo'" in paths["pipeline[0].uses"]
    assert "duplicate" in paths["pipeline[1].id"]
    assert paths["pipeline[1].with.seconds"] == "required"
    assert "pipeline[2].if" in paths
    assert "pipeline[2].with.t" in paths
    assert "schedule.expr" in paths


async def test_validate_pipeline_accepts_a_good_pipeline_and_lists_next_runs(client: Client) -> None:
    result = await call_ok(
        client,
        "validate_pipeline",
        {"pipeline": echo_pipeline(x=1), "schedule": {"kind": "interval", "expr": "15m"}},
    )
    assert result == {"valid": True, "errors": [], "warnings": [], "next_runs": result["next_runs"]}
    assert len(result["next_runs"]) == 5


async def test_preview_schedule_describes_and_lists_fire_times(client: Client) -> None:
    preview = await call_ok(
        client,
        "preview_schedule",
        {"schedule": {"kind": "cron", "expr": "0 9 * * 1-5", "timezone": "Europe/Paris"}, "count": 3},
    )
    assert len(preview["next_runs"]) == 3
    assert "09:00" in preview["description"]
    assert all(moment.endswith(":00:00Z") for moment in preview["next_runs"])


async def test_list_tasks_pages_with_a_cursor_and_filters(client: Client) -> None:
    ids = [(await make_task(client, title=f"Task {n}"))["id"] for n in range(5)]
    first = await call_ok(client, "list_tasks", {"limit": 2})
    second = await call_ok(client, "list_tasks", {"limit": 2, "cursor": first["next_cursor"]})
    third = await call_ok(client, "list_tasks", {"limit": 2, "cursor": second["next_cursor"]})
    seen = [task["id"] for page in (first, second, third) for task in page["tasks"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None
    found = await call_ok(client, "list_tasks", {"query": "task 3"})
    assert [task["title"] for task in found["tasks"]] == ["Task 3"]
    assert (await call_ok(client, "list_tasks", {"status": "paused"}))["tasks"] == []


async def test_pause_resume_cancel_and_delete_change_the_task(client: Client) -> None:
    task = await make_task(client, schedule={"kind": "interval", "expr": "1h"})
    assert task["next_run_at"] is not None
    paused = await call_ok(client, "pause_task", {"task_id": task["id"]})
    assert paused["status"] == "paused" and paused["next_run_at"] is None
    resumed = await call_ok(client, "resume_task", {"task_id": task["id"]})
    assert resumed["status"] == "active" and resumed["next_run_at"] is not None
    cancelled = await call_ok(client, "cancel_task", {"task_id": task["id"]})
    assert cancelled["status"] == "cancelled"
    assert "cancelled" in await call_error(client, "resume_task", {"task_id": task["id"]})
    deleted = await call_ok(client, "delete_task", {"task_id": task["id"]})
    assert deleted == {"deleted": True, "task_id": task["id"]}
    assert "not found" in await call_error(client, "get_task", {"task_id": task["id"]})


async def test_deleting_a_task_mid_run_leaves_none_of_the_run_s_records_behind(
    client: Client, tmp_path: Path
) -> None:
    sleeper = [
        {"id": "first", "uses": "core.noop"},
        {"id": "wait", "uses": "core.sleep", "with": {"seconds": 5}},
    ]
    task = await make_task(client, pipeline=sleeper)
    run = await call_ok(client, "run_now", {"task_id": task["id"]})
    with anyio.fail_after(5):  # the first step is done: the run sleeps in the second
        while True:
            if (await call_ok(client, "get_run", {"run_id": run["id"]}))["steps_completed"] == 1:
                break
            await anyio.sleep(0.02)
    await call_ok(client, "delete_task", {"task_id": task["id"]})
    # A negative check, given 0.5 s: the run is cut and records how it ended after the delete,
    # and that record must not bring back any row (no signal tells when it has tried).
    await anyio.sleep(0.5)
    with sqlite3.connect(tmp_path / "orchestrator.db") as conn:
        left = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("runs", "steps", "run_logs")
        ]
    assert left == [0, 0, 0]


async def test_update_task_replaces_given_fields_and_rechecks(client: Client) -> None:
    task = await make_task(client)
    updated = await call_ok(
        client, "update_task", {"task_id": task["id"], "params": {"city": "Nice"}, "title": "Renamed"}
    )
    assert updated["params"] == {"city": "Nice"} and updated["title"] == "Renamed"
    assert updated["pipeline"] == task["pipeline"]
    error = await call_error(
        client, "update_task", {"task_id": task["id"], "pipeline": [{"id": "x", "uses": "nope.tool"}]}
    )
    assert "pipeline[0].uses" in error
    assert (await call_ok(client, "get_task", {"task_id": task["id"]}))["title"] == "Renamed"


async def test_idempotency_key_returns_the_first_result_and_creates_nothing(client: Client) -> None:
    first = await make_task(client, idempotency_key="k1")
    second = await make_task(client, idempotency_key="k1", title="Other")
    assert second["id"] == first["id"]
    assert len((await call_ok(client, "list_tasks"))["tasks"]) == 1
    run1 = await call_ok(client, "run_now", {"task_id": first["id"], "idempotency_key": "r"})
    run2 = await call_ok(client, "run_now", {"task_id": first["id"], "idempotency_key": "r"})
    assert run1["id"] == run2["id"]


async def test_list_catalog_shows_builtin_servers_and_tools(client: Client) -> None:
    catalog = await call_ok(client, "list_catalog")
    assert {server["name"] for server in catalog["servers"]} == {"core", "http"}
    assert all(server["available"] for server in catalog["servers"])
    uses = {tool["uses"] for tool in catalog["tools"]}
    assert {"core.echo", "core.noop", "core.sleep", "core.fail", "core.transform", "http.request"} <= uses
    only_core = await call_ok(client, "list_catalog", {"server": "core"})
    assert {tool["uses"].split(".")[0] for tool in only_core["tools"]} == {"core"}
    assert "not found" in await call_error(client, "list_catalog", {"server": "nope"})


async def test_server_status_reports_queue_instances_and_run_stats(client: Client) -> None:
    task = await make_task(client)
    await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
    status = await call_ok(client, "server_status")
    assert status["version"]
    assert len(status["instances"]) == 1
    assert status["runs_24h"]["succeeded"] == 1
    assert status["runs_24h"]["success_rate"] == 1.0
    assert status["catalog"] == {"servers_available": 2, "servers_total": 2}
    assert status["active_tasks"] == 1


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("schedule_task", {"title": "x", "schedule": MANUAL}, "pipeline"),
        ("schedule_task", {"title": "", "schedule": MANUAL, "pipeline": echo_pipeline()}, "title"),
        (
            "schedule_task",
            {"title": "x", "schedule": {"kind": "weekly"}, "pipeline": echo_pipeline()},
            "schedule.kind",
        ),
        (
            "schedule_task",
            {"title": "x", "schedule": {"kind": "interval", "expr": "0s"}, "pipeline": echo_pipeline()},
            "schedule.expr",
        ),
        (
            "schedule_task",
            {
                "title": "x",
                "schedule": {"kind": "cron", "expr": "* * *", "timezone": "Mars/Base"},
                "pipeline": echo_pipeline(),
            },
            "schedule.timezone",
        ),
        ("schedule_task", {"title": "x", "schedule": MANUAL, "pipeline": "not a list"}, "pipeline"),
        ("schedule_task", {"title": "x", "schedule": MANUAL, "pipeline": []}, "pipeline"),
        (
            "schedule_task",
            {"title": "x", "schedule": MANUAL, "pipeline": echo_pipeline(), "policy": {"priority": 9}},
            "policy.priority",
        ),
        (
            "schedule_task",
            {
                "title": "x",
                "schedule": MANUAL,
                "pipeline": echo_pipeline(),
                "policy": {"overlap": "sometimes"},
            },
            "policy.overlap",
        ),
        (
            "schedule_task",
            {"title": "x", "schedule": MANUAL, "pipeline": [{"id": "bad id!", "uses": "core.echo"}]},
            "pipeline[0].id",
        ),
        (
            "schedule_task",
            {"title": "x", "schedule": MANUAL, "pipeline": [{"id": "a", "uses": "core.echo", "extra": 1}]},
            "pipeline[0].extra",
        ),
        (
            "schedule_task",
            {
                "title": "x",
                "schedule": MANUAL,
                "pipeline": [{"id": "a", "uses": "core.sleep", "with": {"seconds": "soon"}}],
            },
            "pipeline[0].with.seconds",
        ),
        (
            "schedule_task",
            {"title": "x", "schedule": MANUAL, "pipeline": echo_pipeline(), "output": "a ||"},
            "output",
        ),
        (
            "schedule_task",
            {"title": "x", "schedule": MANUAL, "pipeline": echo_pipeline(), "on_failure": [{"id": "alert"}]},
            "on_failure[0].uses: required",
        ),
        (
            "schedule_task",
            {
                "title": "x",
                "schedule": MANUAL,
                "pipeline": echo_pipeline(),
                "on_failure": [{"id": "echo", "uses": "core.noop"}],
            },
            "on_failure[0].id: duplicate step id 'echo'",
        ),
        ("get_task", {"task_id": "task_missing"}, "task 'task_missing' not found"),
        ("get_task", {}, "task_id"),
        ("get_run", {"run_id": "run_missing"}, "run 'run_missing' not found"),
        ("cancel_run", {"run_id": "run_missing"}, "run 'run_missing' not found"),
        ("run_now", {"task_id": "nope"}, "task 'nope' not found"),
        ("list_tasks", {"limit": 0}, "limit"),
        ("list_tasks", {"status": "sleeping"}, "status"),
        ("list_tasks", {"cursor": "garbage!"}, "cursor"),
        ("list_runs", {"since": "yesterday"}, "since"),
        ("list_runs", {"task_id": "task_nope"}, "task 'task_nope' not found"),
        ("preview_schedule", {"schedule": {"kind": "cron", "expr": "0 9 31 2 *"}}, "schedule.expr"),
        ("preview_schedule", {"schedule": {"kind": "once", "expr": "2001-01-01T00:00:00Z"}}, "schedule"),
        ("preview_schedule", {"schedule": {"kind": "cron", "expr": "0 9 * * *"}, "count": 51}, "count"),
        ("update_task", {"task_id": "task_nope", "title": "y"}, "task 'task_nope' not found"),
    ],
)
async def test_bad_arguments_get_a_tool_error_naming_the_field(
    client: Client, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    error = await call_error(client, tool, arguments)
    assert expected in error
    assert (await call_ok(client, "list_tasks"))["tasks"] == []  # nothing was stored, the server still serves

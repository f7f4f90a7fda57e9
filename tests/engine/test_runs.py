"""Pipelines end to end through the engine: conditions, templates, failures, retries, timeouts, cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from mcp import Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from tests.conftest import call_ok, step_running


async def run_pipeline(client: Client, pipeline: list[dict[str, Any]], **task: Any) -> dict[str, Any]:
    created = await call_ok(
        client, "schedule_task", {"title": "t", "schedule": {"kind": "manual"}, "pipeline": pipeline, **task}
    )
    return await call_ok(
        client, "run_now", {"task_id": created["id"], "wait": True, "wait_timeout_seconds": 30}
    )


async def slow_task(client: Client) -> dict[str, Any]:
    """A manual task whose one step sleeps a minute."""
    pipeline = [{"id": "wait", "uses": "core.sleep", "with": {"seconds": 60}}]
    return await call_ok(
        client, "schedule_task", {"title": "slow", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )


def steps_by_id(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in run["steps"]}


async def test_if_conditions_skip_steps_and_later_steps_read_saved_results(client: Client) -> None:
    run = await run_pipeline(
        client,
        [
            {"id": "fc", "uses": "core.echo", "with": {"rain": "${{ params.rain }}"}, "save_as": "fc"},
            {
                "id": "alert",
                "uses": "core.echo",
                "if": "vars.fc.rain > `50`",
                "with": {"text": "Rain ${{ vars.fc.rain }}% in ${{ params.city }}", "raw": "${{ vars.fc }}"},
                "save_as": "alert",
            },
            {"id": "calm", "uses": "core.echo", "if": "vars.fc.rain <= `50`", "with": {}},
        ],
        params={"rain": 80, "city": "Lyon"},
    )
    assert run["status"] == "succeeded"
    steps = steps_by_id(run)
    assert steps["alert"]["result"] == {"text": "Rain 80% in Lyon", "raw": {"rain": 80}}
    assert steps["calm"]["status"] == "skipped"
    assert "was false" in steps["calm"]["skip_reason"]
    assert run["output"] == {"fc": {"rain": 80}, "alert": {"text": "Rain 80% in Lyon", "raw": {"rain": 80}}}


async def test_a_failed_step_fails_the_run_and_later_steps_do_not_start(client: Client) -> None:
    run = await run_pipeline(
        client,
        [
            {"id": "boom", "uses": "core.fail", "with": {"message": "disk full"}},
            {"id": "after", "uses": "core.noop"},
        ],
    )
    assert run["status"] == "failed"
    assert run["error"] == {"step_id": "boom", "type": "tool_error", "message": "disk full"}
    steps = steps_by_id(run)
    assert steps["boom"]["status"] == "failed" and steps["boom"]["error"] == "disk full"
    assert steps["after"]["status"] == "skipped" and steps["after"]["started_at"] is None


async def test_continue_on_error_goes_on_and_steps_context_shows_the_failure(client: Client) -> None:
    run = await run_pipeline(
        client,
        [
            {"id": "boom", "uses": "core.fail", "with": {"message": "nope"}, "continue_on_error": True},
            {"id": "after", "uses": "core.echo", "with": {"prev": "${{ steps.boom.status }}"}},
        ],
    )
    assert run["status"] == "succeeded"
    assert steps_by_id(run)["after"]["result"] == {"prev": "failed"}


async def test_retries_follow_retry_on_and_count_attempts(client: Client) -> None:
    run = await run_pipeline(
        client,
        [
            {"id": "flaky", "uses": "core.fail", "retry": {"max_attempts": 3, "backoff_seconds": 0}},
        ],
    )
    assert steps_by_id(run)["flaky"]["attempts"] == 3
    no_retry = await run_pipeline(
        client,
        [
            {
                "id": "flaky",
                "uses": "core.fail",
                "retry": {"max_attempts": 3, "backoff_seconds": 0, "retry_on": ["timeout"]},
            },
        ],
    )
    assert steps_by_id(no_retry)["flaky"]["attempts"] == 1
    log = (await client.read_resource(run["log_uri"])).contents[0].text  # type: ignore[union-attr]
    assert log.count("retrying in 0s") == 2


async def test_a_step_timeout_cuts_the_call_and_marks_the_step_timed_out(client: Client) -> None:
    with anyio.fail_after(10):
        run = await run_pipeline(
            client, [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 30}, "timeout_seconds": 1}]
        )
    assert run["status"] == "failed"
    assert run["error"]["type"] == "timeout"
    assert steps_by_id(run)["slow"]["status"] == "timed_out"


async def test_the_run_timeout_ends_the_run_timed_out_and_runs_on_failure(client: Client) -> None:
    with anyio.fail_after(10):
        run = await run_pipeline(
            client,
            [{"id": "slow", "uses": "core.sleep", "with": {"seconds": 30}}],
            policy={"timeout_seconds": 1},
            on_failure=[{"id": "alert", "uses": "core.echo", "with": {"why": "${{ error.type }}"}}],
        )
    assert run["status"] == "timed_out"
    assert run["error"]["type"] == "run_timeout"
    steps = steps_by_id(run)
    assert steps["slow"]["status"] == "timed_out"
    assert steps["alert"]["phase"] == "on_failure"
    assert steps["alert"]["result"] == {"why": "run_timeout"}


async def test_on_failure_steps_run_with_the_error_in_context(client: Client) -> None:
    run = await run_pipeline(
        client,
        [{"id": "boom", "uses": "core.fail", "with": {"message": "bad"}}],
        on_failure=[
            {
                "id": "report",
                "uses": "core.echo",
                "with": {"msg": "${{ error.step_id }}: ${{ error.message }}"},
            }
        ],
    )
    assert run["status"] == "failed"
    assert steps_by_id(run)["report"]["result"] == {"msg": "boom: bad"}


async def test_cancel_run_cuts_the_call_in_flight_within_two_seconds(client: Client) -> None:
    task = await slow_task(client)
    run = await call_ok(client, "run_now", {"task_id": task["id"]})
    await step_running(client, run["id"])
    started = anyio.current_time()
    cancelled = await call_ok(client, "cancel_run", {"run_id": run["id"]})
    assert anyio.current_time() - started < 2
    assert cancelled["status"] == "cancelled"
    assert steps_by_id(cancelled)["wait"]["status"] == "cancelled"


async def test_cancelling_a_queued_run_ends_it_at_once(client: Client) -> None:
    task = await slow_task(client)
    first = await call_ok(client, "run_now", {"task_id": task["id"]})
    second = await call_ok(client, "run_now", {"task_id": task["id"]})  # waits: the task is exclusive
    cancelled = await call_ok(client, "cancel_run", {"run_id": second["id"]})
    assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    await call_ok(client, "cancel_run", {"run_id": first["id"]})


async def test_rendered_arguments_of_the_wrong_type_fail_the_step_naming_the_argument(client: Client) -> None:
    run = await run_pipeline(
        client,
        [{"id": "nap", "uses": "core.sleep", "with": {"seconds": "${{ params.s }}"}}],
        params={"s": "long"},
    )
    assert run["status"] == "failed"
    assert run["error"]["type"] == "invalid_arguments"
    assert "pipeline[0].with.seconds" in run["error"]["message"]


async def test_core_transform_returns_the_jmespath_value(client: Client) -> None:
    run = await run_pipeline(
        client,
        [
            {
                "id": "max",
                "uses": "core.transform",
                "with": {"data": [1, 5, 9], "expression": "max(data)"},
                "save_as": "m",
            }
        ],
        output="vars.m",
    )
    assert run["output"] == 9


async def test_large_results_are_stored_whole_and_returned_truncated(client: Client) -> None:
    big = "x" * 100_000
    run = await run_pipeline(
        client, [{"id": "big", "uses": "core.echo", "with": {"blob": big}}], output="`null`"
    )
    step = steps_by_id(run)["big"]
    assert step["result_uri"] == f"orchestrator://runs/{run['id']}/steps/big/result"
    assert isinstance(step["result"], str) and step["result"].startswith('{"blob": "xxx')
    assert step["result"].endswith(f"read {step['result_uri']} for the whole value]")
    whole = await client.read_resource(step["result_uri"])
    assert json.loads(whole.contents[0].text) == {"blob": big}  # type: ignore[union-attr]


@pytest.fixture
async def secret_client(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("ORCH_SECRET_API_TOKEN", "s3cr3t-value-42")
    async with Client(create_server(settings)) as connected:
        yield connected


async def test_secrets_are_used_but_never_stored_or_returned(
    secret_client: Client, database_url: str
) -> None:
    run = await run_pipeline(
        secret_client,
        [
            {
                "id": "auth",
                "uses": "core.echo",
                "with": {"header": "Bearer ${{ secrets.API_TOKEN }}"},
                "save_as": "a",
            },
            {"id": "leak", "uses": "core.fail", "with": {"message": "token was ${{ secrets.API_TOKEN }}"}},
        ],
    )
    text_returned = json.dumps(run)
    assert "s3cr3t-value-42" not in text_returned
    assert steps_by_id(run)["auth"]["arguments"] == {"header": "Bearer ***"}
    assert run["error"]["message"] == "token was ***"
    log = (await secret_client.read_resource(run["log_uri"])).contents[0].text  # type: ignore[union-attr]
    assert "s3cr3t-value-42" not in log
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        for table in ("runs", "steps", "run_logs", "tasks"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).fetchall()
            assert "s3cr3t-value-42" not in repr(rows), table
    await engine.dispose()


async def test_a_missing_secret_fails_the_step_naming_the_variable(client: Client) -> None:
    run = await run_pipeline(
        client, [{"id": "auth", "uses": "core.echo", "with": {"t": "${{ secrets.NOPE }}"}}]
    )
    assert run["error"]["type"] == "missing_secret"
    assert "ORCH_SECRET_NOPE" in run["error"]["message"]

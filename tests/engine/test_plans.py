"""Parsed pipelines are reused between runs of a task, and never outlive a change to the task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client

from orchestrator_mcp.domain.pipeline import check_arguments
from orchestrator_mcp.engine.plans import PlanCache
from orchestrator_mcp.store.tables import TaskRow
from tests.conftest import call_ok


def task_row(task_id: str = "task_1", **fields: Any) -> TaskRow:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": task_id,
        "owner": "local",
        "title": "t",
        "status": "active",
        "schedule": {"kind": "manual"},
        "pipeline": [{"id": "a", "uses": "core.echo", "with": {"key": "${{ secrets.TOKEN }}"}}],
        "params": {},
        "policy": {},
        "created_at": now,
        "updated_at": now,
    }
    return TaskRow(**(values | fields))


def test_an_unchanged_task_reuses_its_plan_even_when_read_again() -> None:
    plans = PlanCache()
    first = plans.get(task_row())
    assert plans.get(task_row()) is first
    assert [step.id for step in first.steps] == ["a"]
    assert first.secrets == {"a": frozenset({"TOKEN"})}


@pytest.mark.parametrize(
    "change",
    [
        {"pipeline": [{"id": "b", "uses": "core.noop"}]},
        {"on_failure": [{"id": "alert", "uses": "core.noop"}]},
        {"policy": {"timeout_seconds": 5}},
    ],
)
def test_a_changed_pipeline_on_failure_or_policy_is_parsed_again(change: dict[str, Any]) -> None:
    plans = PlanCache()
    before = plans.get(task_row())
    after = plans.get(task_row(**change))
    assert after is not before
    assert after == plans.get(task_row(**change))


def test_a_stored_pipeline_that_no_longer_parses_raises_value_error_every_time() -> None:
    plans = PlanCache()
    broken = task_row(pipeline=[{"id": "bad id!", "uses": "core.noop"}])
    for _ in range(2):
        with pytest.raises(ValueError):
            plans.get(broken)
    assert len(plans) == 0


def test_the_least_recently_run_task_is_dropped_first() -> None:
    plans = PlanCache(size=2)
    first = plans.get(task_row("task_1"))
    plans.get(task_row("task_2"))
    assert plans.get(task_row("task_1")) is first  # task_1 is now the most recent
    plans.get(task_row("task_3"))
    assert len(plans) == 2
    assert plans.get(task_row("task_1")) is first
    assert plans.get(task_row("task_2")) is not None  # parsed again: it had been dropped


def test_argument_checks_follow_a_new_schema_object() -> None:
    loose: dict[str, Any] = {"type": "object"}
    strict: dict[str, Any] = {"type": "object", "required": ["city"]}
    assert check_arguments({}, loose, "with") == []
    assert check_arguments({}, loose, "with") == []  # the cached validator gives the same answer
    assert [str(problem) for problem in check_arguments({}, strict, "with")] == ["with.city: required"]


@pytest.mark.anyio
async def test_the_updated_pipeline_is_the_one_that_runs(client: Client) -> None:
    created = await call_ok(
        client,
        "schedule_task",
        {"title": "t", "schedule": {"kind": "manual"}, "pipeline": [{"id": "old", "uses": "core.noop"}]},
    )
    run_now = {"task_id": created["id"], "wait": True, "wait_timeout_seconds": 30}
    first = await call_ok(client, "run_now", run_now)
    assert [step["step_id"] for step in first["steps"]] == ["old"]

    pipeline = [{"id": "new", "uses": "core.echo", "with": {"word": "changed"}, "save_as": "said"}]
    await call_ok(client, "update_task", {"task_id": created["id"], "pipeline": pipeline})
    second = await call_ok(client, "run_now", run_now)
    assert second["status"] == "succeeded"
    assert [step["step_id"] for step in second["steps"]] == ["new"]
    assert second["output"] == {"said": {"word": "changed"}}

    await call_ok(client, "update_task", {"task_id": created["id"], "policy": {"timeout_seconds": 1}})
    slow = [{"id": "nap", "uses": "core.sleep", "with": {"seconds": 5}}]
    await call_ok(client, "update_task", {"task_id": created["id"], "pipeline": slow})
    third = await call_ok(client, "run_now", run_now)
    assert third["status"] == "timed_out"

"""The engine loop's firing step: a write only when something is due, and the rows it queues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.domain.schedule import Schedule
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings, new_run, run_values
from orchestrator_mcp.store.sql import FirePlanner, RunFactory, SqlStore
from orchestrator_mcp.store.tables import TaskRow

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FireCountingStore(SqlStore):
    fires: int

    async def fire_due(self, now: datetime, planner: FirePlanner, runs_for: RunFactory, limit: int) -> int:
        self.fires += 1
        return await super().fire_due(now, planner, runs_for, limit)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[FireCountingStore]:
    opened = await SqlStore.open(database_url)
    counting = FireCountingStore(opened.engine)
    counting.fires = 0
    try:
        yield counting
    finally:
        await counting.close()


def interval_task(**fields: Any) -> TaskRow:
    schedule = Schedule.model_validate({"kind": "interval", "expr": "1m"})
    values: dict[str, Any] = {
        "id": "task_1",
        "owner": "local",
        "title": "every minute",
        "status": "active",
        "schedule": schedule.model_dump(mode="json"),
        "anchor": NOW,
        "next_run_at": NOW,
        "pipeline": [{"id": "a", "uses": "core.noop"}],
        "params": {"city": "Lyon"},
        "policy": {"priority": 5, "overlap": "allow"},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return TaskRow(**(values | fields))


def engine_on(store: SqlStore) -> Engine:
    clock = ManualClock(NOW)
    runner = Runner(store, Catalog([]), clock, {}, RunEvents())
    return Engine(store, runner, clock, EngineSettings())


async def test_nothing_due_means_no_fire_transaction(store: FireCountingStore) -> None:
    engine = engine_on(store)
    assert await engine.fire_due(NOW) is None  # no task at all
    await store.insert_task(interval_task(next_run_at=NOW + timedelta(minutes=1)))
    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
    assert store.fires == 0


async def test_a_due_task_is_fired_once_and_the_next_fire_time_returned(store: FireCountingStore) -> None:
    engine = engine_on(store)
    await store.insert_task(interval_task())
    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
    assert store.fires == 1
    [run] = await store.list_runs(None, "task_1", None, None, 10, None)
    assert (run.scheduled_for, run.trigger, run.status, run.priority) == (NOW, "schedule", "queued", 5)
    assert run.params == {"city": "Lyon"} and run.exclusive is False


def test_fired_run_rows_have_every_column_a_validated_run_has() -> None:
    task = interval_task()
    policy = Policy.model_validate(task.policy)
    built = run_values(task, Trigger.SCHEDULE, NOW, NOW, policy, task.params, status="skipped", fire_key="k")
    validated = new_run(task, Trigger.SCHEDULE, NOW, NOW, policy, task.params).model_dump()
    assert built.keys() == validated.keys()
    different = {key for key in built if built[key] != validated[key]}
    assert different == {"id", "fire_key", "status"}
    assert (built["status"], built["fire_key"]) == ("skipped", "k")

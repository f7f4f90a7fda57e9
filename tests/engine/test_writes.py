"""When a run writes: before each tool call (with everything that happened since), and at its end.

Notices about a run (progress, subscriptions) go out only once what they tell is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import SystemClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.engine.events import RunEvent, RunEvents
from orchestrator_mcp.engine.records import StepRecord
from orchestrator_mcp.engine.runner import RunHandle, Runner
from orchestrator_mcp.engine.scheduler import new_run
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import LogRow, LogValues, RunRow, StepRow, StepValues, TaskRow, log_line


@dataclass
class Write:
    steps: list[tuple[str, str]]
    """(step id, status) of each step record written."""
    logs: list[str]
    run_values: dict[str, Any] | None
    end: dict[str, Any] | None


class CountingStore:
    """A store whose progress writes are remembered as the runner makes them."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.writes: list[Write] = []
        self._record_progress = store.record_progress

    async def record_progress(
        self,
        run_id: str,
        steps: Sequence[StepValues],
        logs: Sequence[LogValues],
        run_values: dict[str, Any] | None,
        end: dict[str, Any] | None = None,
    ) -> None:
        written = [(step["step_id"], step["status"]) for step in steps]
        self.writes.append(Write(written, [log["message"] for log in logs], run_values, end))
        await self._record_progress(run_id, steps, logs, run_values, end)


@pytest.fixture
async def counting(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CountingStore]:
    store = await SqlStore.open(database_url)
    counter = CountingStore(store)
    monkeypatch.setattr(store, "record_progress", counter.record_progress)
    try:
        yield counter
    finally:
        await store.close()


async def claimed_run(store: SqlStore, pipeline: list[dict[str, Any]], **fields: Any) -> RunRow:
    now = datetime.now(UTC)
    task = TaskRow(
        id="task_1",
        owner="local",
        title="t",
        status="active",
        schedule={"kind": "manual"},
        pipeline=pipeline,
        params={},
        policy={},
        created_at=now,
        updated_at=now,
        **fields,
    )
    await store.insert_task(task)
    await store.insert_run(new_run(task, Trigger.MANUAL, now, now, Policy(), {}))
    [run] = (await store.claim(now, "inst_test", 1)).runs
    return run


async def test_a_run_writes_once_per_tool_call_and_once_at_its_end(
    counting: CountingStore, catalog: Catalog
) -> None:
    store = counting.store
    pipeline: list[dict[str, Any]] = [
        {"id": "a", "uses": "core.noop"},
        {"id": "skipped", "uses": "core.noop", "if": "`false`"},
        {"id": "b", "uses": "core.echo", "with": {"x": 1}},
    ]
    run = await claimed_run(store, pipeline)
    await Runner(store, catalog, SystemClock(), {}, RunEvents()).execute(
        run, await store.get_task(run.task_id), RunHandle(run.id)
    )

    start, before_b, end = counting.writes
    # The run's start goes with the first call's record.
    assert start.steps == [("a", "running"), ("skipped", "pending"), ("b", "pending")]
    assert start.run_values is not None and set(start.run_values) == {"steps_total", "started_at"}
    assert start.logs[-1] == "calling core.noop"
    # A step's end, and whatever follows up to the next call, go with that call's record.
    assert before_b.steps == [("a", "succeeded"), ("skipped", "skipped"), ("b", "running")]
    assert before_b.run_values == {"steps_completed": 2}
    # The last step's end goes with the run's last log line and the run's end, in one write.
    assert end.steps == [("b", "succeeded")]
    assert end.logs[-1] == "run succeeded"
    assert end.end is not None and end.end["status"] == "succeeded"
    assert [write.end for write in (start, before_b)] == [None, None]
    stored = await store.get_run(run.id)
    assert stored is not None and stored.status == "succeeded" and stored.steps_completed == 3
    task = await store.get_task(run.task_id)
    assert task is not None and (task.run_count, task.last_run_status) == (1, "succeeded")


async def test_a_failed_run_stores_the_failure_and_the_steps_not_started_together(
    counting: CountingStore, catalog: Catalog
) -> None:
    store = counting.store
    pipeline: list[dict[str, Any]] = [
        {"id": "boom", "uses": "core.fail", "with": {"message": "no"}},
        {"id": "never", "uses": "core.noop"},
    ]
    run = await claimed_run(store, pipeline, on_failure=[{"id": "alert", "uses": "core.noop"}])
    await Runner(store, catalog, SystemClock(), {}, RunEvents()).execute(
        run, await store.get_task(run.task_id), RunHandle(run.id)
    )

    assert [write.steps for write in counting.writes] == [
        [("boom", "running"), ("never", "pending")],
        [("boom", "failed"), ("never", "skipped"), ("alert", "running")],
        [("alert", "succeeded")],
    ]
    ended = counting.writes[-1].end
    assert ended is not None and ended["status"] == "failed" and ended["error"]["step_id"] == "boom"
    steps = {step.step_id: step.status for step in await store.list_steps(run.id)}
    assert steps == {"boom": "failed", "never": "skipped", "alert": "succeeded"}


async def test_notices_go_out_only_once_what_they_tell_is_stored(
    counting: CountingStore, catalog: Catalog
) -> None:
    store = counting.store
    pipeline = [{"id": "a", "uses": "core.noop"}, {"id": "b", "uses": "core.noop"}]
    run = await claimed_run(store, pipeline)
    seen: list[tuple[str, dict[str, str]]] = []

    def listener(event: RunEvent) -> None:
        """What the store holds when the notice is sent: every write made so far has completed."""
        steps: dict[str, str] = {}
        for write in counting.writes:
            steps.update(write.steps)
        seen.append((event.message, steps))

    events = RunEvents()
    events.listen(run.id, listener)
    await Runner(store, catalog, SystemClock(), {}, events).execute(
        run, await store.get_task(run.task_id), RunHandle(run.id)
    )

    assert seen == [
        ("run started", {"a": "running", "b": "pending"}),
        ("step a succeeded", {"a": "succeeded", "b": "running"}),
        ("step b succeeded", {"a": "succeeded", "b": "succeeded"}),
        ("run succeeded", {"a": "succeeded", "b": "succeeded"}),
    ]


def test_the_values_a_run_writes_are_the_columns_of_its_rows() -> None:
    record = StepRecord(run_id="run_1", seq=0, step_id="a", uses="core.noop", phase="main")
    assert set(record.values()) == set(StepValues.__annotations__) == set(StepRow.model_fields)
    line = log_line("run_1", datetime.now(UTC), "INFO", "hello")
    assert set(line) == set(LogValues.__annotations__) == set(LogRow.model_fields) - {"id"}

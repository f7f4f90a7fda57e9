"""The engine loop's firing step: a write only when something is due, and the rows it queues."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import exc, text

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.catalog.connection import ServerConnection
from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.domain.schedule import Schedule
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.readings import Reading
from orchestrator_mcp.engine.run_rows import new_run, run_values
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings
from orchestrator_mcp.store.base import Claim, Fired, FirePlanner, RunFactory, Slots
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import RunRow, TaskRow
from tool_catalog import create_core_server

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Calls:
    """How often the engine called some store methods."""

    fires: int = 0
    claims: int = 0


@pytest.fixture
def calls(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> Calls:
    counted = Calls()
    fire_due, claim = store.fire_due, store.claim

    async def counted_fire(
        now: datetime, planner: FirePlanner, runs_for: RunFactory, limit: int, slots: Slots | None = None
    ) -> Fired:
        counted.fires += 1
        return await fire_due(now, planner, runs_for, limit, slots)

    async def counted_claim(now: datetime, instance_id: str, limit: int) -> Claim:
        counted.claims += 1
        return await claim(now, instance_id, limit)

    monkeypatch.setattr(store, "fire_due", counted_fire)
    monkeypatch.setattr(store, "claim", counted_claim)
    return counted


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


async def test_nothing_due_means_no_fire_transaction(store: SqlStore, calls: Calls) -> None:
    engine = engine_on(store)
    assert await engine.fire_due(NOW) is None  # no task at all
    await store.insert_task(interval_task(next_run_at=NOW + timedelta(minutes=1)))
    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
    assert calls.fires == 0


async def test_a_due_task_is_fired_once_and_the_next_fire_time_returned(
    store: SqlStore, calls: Calls
) -> None:
    engine = engine_on(store)
    await store.insert_task(interval_task())
    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
    assert calls.fires == 1
    [run] = await store.list_runs(None, "task_1", None, None, 10, None)
    assert (run.scheduled_for, run.trigger, run.status, run.priority) == (NOW, "schedule", "queued", 5)
    assert run.params == {"city": "Lyon"} and run.exclusive is False


async def test_a_fire_follows_the_policy_and_schedule_stored_at_its_time(store: SqlStore) -> None:
    """The parsed rules are cached between fires: an update in between must still be honoured."""
    engine = engine_on(store)
    await store.insert_task(interval_task())
    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
    later = NOW + timedelta(minutes=1)
    await store.update_task(
        "task_1",
        {"policy": {"priority": 2, "overlap": "allow"}, "schedule": {"kind": "interval", "expr": "5m"}},
    )
    assert await engine.fire_due(later) == NOW + timedelta(minutes=5)  # every 5 min from the anchor
    runs = await store.list_runs(None, "task_1", None, None, 10, None)
    assert [(run.scheduled_for, run.priority) for run in runs] == [(later, 2), (NOW, 5)]


@pytest.mark.parametrize(
    "broken", [{"schedule": {"kind": "hourly"}}, {"policy": {"priority": 9, "overlap": "allow"}}]
)
async def test_a_task_whose_stored_definition_no_longer_parses_is_paused(
    store: SqlStore, broken: dict[str, Any]
) -> None:
    engine = engine_on(store)
    await store.insert_task(interval_task())
    await store.insert_task(interval_task(id="task_2"))
    await store.update_task("task_1", broken)  # stored as is: written past the tools' validation
    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
    paused = await store.get_task("task_1")
    assert paused is not None and paused.status == "paused"
    assert await store.list_runs(None, "task_1", None, None, 10, None) == []
    assert len(await store.list_runs(None, "task_2", None, None, 10, None)) == 1  # the others still fire


async def test_a_fire_starts_the_runs_this_instance_has_slots_for_and_queues_the_rest(
    store: SqlStore, calls: Calls
) -> None:
    clock = ManualClock(NOW)
    core = Catalog([ServerConnection("core", "builtin", create_core_server())])
    engine = Engine(
        store, Runner(store, core, clock, {}, RunEvents()), clock, EngineSettings(max_concurrent_runs=2)
    )
    for n in range(3):
        await store.insert_task(interval_task(id=f"task_{n}"))
    async with anyio.create_task_group() as sessions:
        await core.start(sessions)
        async with anyio.create_task_group() as runs:
            with engine.executing(runs):
                assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)
                assert len(engine.running) == 2 and calls.claims == 0  # started without a claim
        ran = await store.list_runs(None, None, "succeeded", None, 10, None)
        assert len(ran) == 2 and {run.instance_id for run in ran} == {engine.instance.id}
        [queued] = await store.list_runs(None, None, "queued", None, 10, None)
        async with anyio.create_task_group() as runs:
            with engine.executing(runs):
                await engine.dispatch(NOW)  # the third waits for a claim
        core.close()
    ended = await store.get_run(queued.id)
    assert ended is not None and ended.status == "succeeded"
    assert [len(await store.list_steps(run.id)) for run in [*ran, ended]] == [1, 1, 1]


def test_fired_run_rows_have_every_column_a_validated_run_has() -> None:
    task = interval_task()
    policy = Policy.model_validate(task.policy)
    built = run_values(task, Trigger.SCHEDULE, NOW, NOW, policy, task.params, status="skipped", fire_key="k")
    validated = new_run(task, Trigger.SCHEDULE, NOW, NOW, policy, task.params).model_dump()
    assert built.keys() == validated.keys()
    different = {key for key in built if built[key] != validated[key]}
    assert different == {"id", "fire_key", "status"}
    assert (built["status"], built["fire_key"]) == ("skipped", "k")


def test_fired_run_rows_equal_what_validating_them_gives() -> None:
    task = interval_task()
    policy = Policy.model_validate(task.policy)
    error = {"step_id": None, "type": "overlap", "message": "still active"}
    shapes: list[dict[str, Any]] = [
        {},
        {"fire_key": "k", "not_before": NOW + timedelta(seconds=3)},
        {"status": "skipped", "finished_at": NOW, "error": error},
    ]
    for fields in shapes:
        built = run_values(task, Trigger.SCHEDULE, NOW, NOW, policy, task.params, **fields)
        assert RunRow.model_validate(built).model_dump() == built


def test_run_defaults_are_plain_values_shared_safely() -> None:
    """Fired rows share the column defaults: none may be a mutable value or come from a factory."""
    for name, info in RunRow.model_fields.items():
        assert info.default_factory is None, name
        assert isinstance(info.default, type(None) | bool | int | str) or info.is_required(), name


def test_a_reading_holds_while_fresh_and_nothing_is_due() -> None:
    reading = Reading()
    assert not reading.holds(NOW)  # never read
    reading.value, reading.fresh_until = NOW + timedelta(seconds=30), NOW + timedelta(seconds=1)
    assert reading.holds(NOW)
    assert not reading.holds(NOW + timedelta(seconds=1))  # the poll reads it again
    reading.value = NOW
    assert not reading.holds(NOW)  # something is due
    reading.value = None
    assert reading.holds(NOW)
    reading.forget()
    assert not reading.holds(NOW)


async def test_a_change_signalled_during_a_read_is_not_lost() -> None:
    reading = Reading()

    async def read() -> datetime | None:
        reading.forget()  # e.g. a task created while the store was being read
        return None

    assert await reading.take(NOW, 1.0, read) is None
    assert not reading.holds(NOW)


async def test_claims_are_skipped_while_the_queue_is_known_empty_and_made_after_a_wake(
    store: SqlStore, calls: Calls
) -> None:
    engine = engine_on(store)
    async with anyio.create_task_group() as runs:
        with engine.executing(runs):
            await engine.dispatch(NOW)
            assert await engine.next_deadline(NOW, None) == NOW + timedelta(seconds=1)  # reads: none queued
            engine.slot_freed()  # a run ended here: the queue is still known empty
            await engine.dispatch(NOW)
            assert calls.claims == 1
            task = interval_task()
            await store.insert_task(task)
            await store.insert_run(new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {}))
            engine.wake(due_times=False)  # what run_now does after queueing
            await engine.dispatch(NOW)
            assert calls.claims == 2
            assert list(engine.running) != []
            await engine.stop()
            runs.cancel_scope.cancel()


async def test_a_queued_run_wakes_the_engine_without_forgetting_when_tasks_are_due(store: SqlStore) -> None:
    engine = engine_on(store)
    assert await engine.fire_if_due(NOW) is None  # read: nothing is due
    await engine.next_deadline(NOW, None)  # read: nothing is queued
    engine.wake(due_times=False)
    assert engine.readings.due.holds(NOW) and not engine.readings.ready.holds(NOW) and engine.woken
    engine.wake()  # a task changed
    assert not engine.readings.due.holds(NOW)


async def test_a_claimed_run_whose_task_is_gone_is_cancelled(store: SqlStore) -> None:
    engine = engine_on(store)
    task = interval_task()
    await store.insert_task(task)
    run = new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {})
    await store.insert_run(run)
    await store.database.write(lambda conn: conn.execute(text("DELETE FROM tasks WHERE id = 'task_1'")))
    async with anyio.create_task_group() as runs:
        with engine.executing(runs):
            await engine.dispatch(NOW)
            assert list(engine.running) == [run.id]
    ended = await store.get_run(run.id)
    assert ended is not None and ended.status == "cancelled"
    assert ended.error == {"step_id": None, "type": "cancelled", "message": "the task was deleted"}
    assert [line.message for line in await store.read_logs(run.id)] == ["the task was deleted"]


async def crashing_run(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, RunRow]:
    """An engine whose runner crashes on every run, and a queued run for it."""
    engine = engine_on(store)
    task = interval_task()
    await store.insert_task(task)
    run = new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {})
    await store.insert_run(run)

    async def crash(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.runner, "execute", crash)
    return engine, run


async def test_a_crashed_run_is_ended_failed_once_the_database_is_back(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, run = await crashing_run(store, monkeypatch)
    finish_run = store.finish_run
    outages = [exc.OperationalError("UPDATE runs", {}, Exception("the database is restarting"))]

    async def flaky_finish(*args: Any) -> bool:
        if outages:
            raise outages.pop()
        return await finish_run(*args)

    monkeypatch.setattr(store, "finish_run", flaky_finish)
    async with anyio.create_task_group() as runs:
        with engine.executing(runs):
            await engine.dispatch(NOW)
    ended = await store.get_run(run.id)
    assert ended is not None and ended.status == "failed" and not outages
    assert ended.error == {
        "step_id": None,
        "type": "internal",
        "message": "internal error: RuntimeError: boom",
    }


async def test_a_crash_whose_end_the_store_refuses_is_logged_and_the_engine_goes_on(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine, run = await crashing_run(store, monkeypatch)
    attempts: list[str] = []

    async def refused(run_id: str, *args: Any) -> bool:
        attempts.append(run_id)
        raise ValueError("not an outage")

    monkeypatch.setattr(store, "finish_run", refused)
    async with anyio.create_task_group() as runs:
        with engine.executing(runs):
            await engine.dispatch(NOW)
    assert attempts == [run.id]  # not retried: only outages are waited out
    assert f"gave up recording the end of run {run.id}" in caplog.text
    still = await store.get_run(run.id)
    assert still is not None and still.status == "running" and not engine.running


async def test_a_task_whose_fire_times_became_too_costly_is_paused_and_the_others_fire(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored past validation: dateutil would search its next date for seconds, at every fire."""
    engine = engine_on(store)
    await store.insert_task(interval_task())
    costly = Schedule.model_validate({"kind": "rrule", "expr": "FREQ=DAILY;BYMONTH=2;BYYEARDAY=366"})
    await store.insert_task(interval_task(id="task_2", schedule=costly.model_dump(mode="json")))

    assert await engine.fire_due(NOW) == NOW + timedelta(minutes=1)

    paused = await store.get_task("task_2")
    assert paused is not None and paused.status == "paused"
    assert await store.list_runs(None, "task_2", None, None, 10, None) == []
    assert len(await store.list_runs(None, "task_1", None, None, 10, None)) == 1
    assert "pausing task task_2: schedule is too costly to compute" in caplog.text

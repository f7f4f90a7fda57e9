"""The SQL store on a SQLite file and on a PostgreSQL database: schema versions, atomic fires, claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from sqlalchemy import text

from orchestrator_mcp.domain.firing import ActiveRuns, FirePlan, PlannedRun, fire_key
from orchestrator_mcp.domain.policy import OverlapPolicy, Policy
from orchestrator_mcp.domain.run import RunStatus, TaskStatus, Trigger
from orchestrator_mcp.engine.scheduler import new_run
from orchestrator_mcp.errors import Unavailable
from orchestrator_mcp.store.base import Slots
from orchestrator_mcp.store.engine import migrate, open_database
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import SCHEMA_VERSION, LogRow, StepRow, TaskRow
from tests.conftest import log_values, step_values

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(database_url)
    yield opened
    await opened.close()


def task_row(task_id: str = "task_1", next_run_at: datetime | None = NOW) -> TaskRow:
    return TaskRow(
        id=task_id,
        owner="local",
        title="t",
        status=TaskStatus.ACTIVE.value,
        schedule={"kind": "interval", "expr": "1m"},
        anchor=NOW,
        pipeline=[{"id": "n", "uses": "core.noop"}],
        params={},
        policy={},
        next_run_at=next_run_at,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_the_schema_version_is_recorded_and_kept_on_reopen(database_url: str) -> None:
    database = open_database(database_url)
    assert await migrate(database) == 0
    assert await migrate(database) == SCHEMA_VERSION
    if database.dialect == "sqlite":
        mode = await database.read(lambda conn: conn.execute(text("PRAGMA journal_mode")).scalar_one())
        assert mode == "wal"
    await database.dispose()


async def test_a_database_from_a_newer_version_is_refused(database_url: str) -> None:
    database = open_database(database_url)
    await migrate(database)
    await database.write(lambda conn: conn.execute(text("UPDATE schema_version SET version = 999")))
    with pytest.raises(Unavailable, match="newer"):
        await migrate(database)
    await database.dispose()


def plan_one(task: TaskRow, active: ActiveRuns) -> FirePlan:
    assert task.next_run_at is not None
    return FirePlan(
        runs=[PlannedRun(task.next_run_at, RunStatus.QUEUED, fire_key(task.next_run_at))],
        next_run_at=task.next_run_at + timedelta(minutes=1),
    )


def rows_for(task: TaskRow, plan: FirePlan) -> list[dict[str, object]]:
    rows = []
    for planned in plan.runs:
        run = new_run(task, Trigger.SCHEDULE, planned.scheduled_for, NOW, Policy(), {})
        run.fire_key = planned.fire_key
        rows.append(run.model_dump())
    return rows


async def test_a_fire_time_yields_one_run_however_many_stores_race_for_it(
    store: SqlStore, database_url: str
) -> None:
    await store.insert_task(task_row())
    others = [await SqlStore.open(database_url) for _ in range(3)]
    counts: list[int] = []

    async def fire(racer: SqlStore) -> None:
        counts.append((await racer.fire_due(NOW, plan_one, rows_for, 100)).queued)

    async with anyio.create_task_group() as group:
        for racer in [store, *others]:
            group.start_soon(fire, racer)
    for racer in others:
        await racer.close()
    assert sorted(counts) == [0, 0, 0, 1]
    runs = await store.list_runs(None, "task_1", None, None, 10, None)
    assert len(runs) == 1 and runs[0].scheduled_for == NOW
    task = await store.get_task("task_1")
    assert task is not None and task.next_run_at == NOW + timedelta(minutes=1)


async def test_the_unique_fire_key_drops_a_second_insert_of_the_same_fire_time(store: SqlStore) -> None:
    await store.insert_task(task_row())
    await store.fire_due(NOW, plan_one, rows_for, 100)
    await store.update_task("task_1", {"next_run_at": NOW})  # as if another process had not seen the move
    assert (await store.fire_due(NOW, plan_one, rows_for, 100)).queued == 0
    assert len(await store.list_runs(None, "task_1", None, None, 10, None)) == 1


async def test_claims_take_priority_then_fire_time_and_one_run_per_exclusive_task(store: SqlStore) -> None:
    for task_id in ("task_a", "task_b"):
        await store.insert_task(task_row(task_id, None))
    a = await store.get_task("task_a")
    b = await store.get_task("task_b")
    assert a is not None and b is not None
    low = new_run(a, Trigger.MANUAL, NOW, NOW, Policy(priority=1), {})
    high = new_run(b, Trigger.MANUAL, NOW + timedelta(seconds=1), NOW, Policy(priority=5), {})
    second_a = new_run(a, Trigger.MANUAL, NOW - timedelta(seconds=1), NOW, Policy(priority=1), {})
    future = new_run(
        b, Trigger.MANUAL, NOW + timedelta(hours=1), NOW, Policy(priority=5, overlap=OverlapPolicy.ALLOW), {}
    )
    for run in (low, high, second_a, future):
        await store.insert_run(run)
    claimed = (await store.claim(NOW + timedelta(seconds=5), "inst_1", 10)).runs
    assert [run.id for run in claimed] == [high.id, second_a.id]
    assert (await store.claim(NOW + timedelta(seconds=5), "inst_2", 10)).runs == []
    assert await store.next_ready_at() == NOW


async def test_a_claim_brings_each_run_s_task_as_stored_then_and_leaves_deleted_ones_out(
    store: SqlStore,
) -> None:
    allow = Policy(overlap=OverlapPolicy.ALLOW)
    for task_id, runs in (("task_a", 2), ("task_b", 1), ("task_gone", 1)):
        task = task_row(task_id, None)
        await store.insert_task(task)
        for _ in range(runs):
            await store.insert_run(new_run(task, Trigger.MANUAL, NOW, NOW, allow, {}))
    await store.update_task("task_a", {"title": "renamed", "pipeline": [{"id": "new", "uses": "core.noop"}]})
    # Deleted behind the store's back (delete_task takes the runs too): its queued run is left.
    await store.database.write(lambda conn: conn.execute(text("DELETE FROM tasks WHERE id = 'task_gone'")))

    claim = await store.claim(NOW, "inst_1", 10)
    assert sorted(run.task_id for run in claim.runs) == ["task_a", "task_a", "task_b", "task_gone"]
    assert sorted(claim.tasks) == ["task_a", "task_b"]
    assert claim.tasks["task_a"] == await store.get_task("task_a")
    assert (claim.tasks["task_a"].title, claim.tasks["task_a"].pipeline[0]["id"]) == ("renamed", "new")
    assert claim.tasks["task_b"] == await store.get_task("task_b")
    empty = await store.claim(NOW, "inst_1", 10)
    assert (empty.runs, empty.tasks) == ([], {})


def rows_under_policy(task: TaskRow, plan: FirePlan) -> list[dict[str, object]]:
    """`rows_for` under the task's own policy, delayed by the seconds of its `jitter` param."""
    rows = []
    for planned in plan.runs:
        run = new_run(
            task, Trigger.SCHEDULE, planned.scheduled_for, NOW, Policy.model_validate(task.policy), {}
        )
        run.fire_key = planned.fire_key
        run.not_before = planned.scheduled_for + timedelta(seconds=task.params.get("jitter", 0))
        rows.append(run.model_dump())
    return rows


async def test_a_fire_with_free_slots_inserts_the_runs_it_can_start_running_best_first(
    store: SqlStore,
) -> None:
    for task_id, priority in (("task_low", 1), ("task_high", 5), ("task_mid", 3)):
        task = task_row(task_id)
        task.policy = {"priority": priority, "overlap": "allow"}
        await store.insert_task(task)

    fired = await store.fire_due(NOW, plan_one, rows_under_policy, 100, Slots("inst_1", 2))

    assert fired.queued == 1
    started = fired.started.runs
    assert [run.task_id for run in started] == ["task_high", "task_mid"]
    for run in started:  # what the engine starts is exactly what is stored
        stored = await store.get_run(run.id)
        assert stored is not None and stored.model_dump() == run.model_dump()
        assert (run.status, run.instance_id, run.started_at) == ("running", "inst_1", NOW)
    assert sorted(fired.started.tasks) == ["task_high", "task_mid"]
    for task_id, task in fired.started.tasks.items():
        stored_task = await store.get_task(task_id)
        assert stored_task is not None
        assert (task.pipeline, task.policy, task.title) == (stored_task.pipeline, stored_task.policy, "t")
    [left] = (await store.claim(NOW, "inst_2", 10)).runs
    assert left.task_id == "task_low"


async def test_a_fire_with_more_free_slots_than_its_limit_takes_that_many_fire_times(store: SqlStore) -> None:
    for n in range(4):
        await store.insert_task(task_row(f"task_{n}"))
    fired = await store.fire_due(NOW, plan_one, rows_for, 2, Slots("inst_1", 5))
    assert (fired.queued, len(fired.started.runs)) == (0, 4)
    assert await store.next_due_at() == NOW + timedelta(minutes=1)


async def test_a_burst_of_more_fire_times_than_slots_is_left_whole_to_the_claim(store: SqlStore) -> None:
    """Runs due together and waiting for slots start by priority: a fire that cannot take every due
    fire time (here 2 of 4) starts none, and neither do the fires after it, which find them queued."""
    for n, priority in enumerate((1, 2, 4, 5)):
        task = task_row(f"task_{n}")
        task.policy = {"priority": priority, "overlap": "allow"}
        await store.insert_task(task)
    first = await store.fire_due(NOW, plan_one, rows_under_policy, 2, Slots("inst_1", 2))
    second = await store.fire_due(NOW, plan_one, rows_under_policy, 2, Slots("inst_1", 2))
    assert [(fired.queued, fired.started.runs) for fired in (first, second)] == [(2, []), (2, [])]
    claimed = (await store.claim(NOW, "inst_1", 2)).runs
    assert [run.task_id for run in claimed] == ["task_3", "task_2"]


async def test_a_fire_starts_nothing_while_a_ready_queued_run_waits_for_a_slot(store: SqlStore) -> None:
    waiting = task_row("task_waiting", None)
    await store.insert_task(waiting)
    await store.insert_run(new_run(waiting, Trigger.MANUAL, NOW, NOW, Policy(), {}))
    await store.insert_task(task_row("task_due"))

    fired = await store.fire_due(NOW, plan_one, rows_for, 100, Slots("inst_1", 10))

    assert (fired.queued, fired.started.runs) == (1, [])
    claimed = (await store.claim(NOW, "inst_1", 10)).runs
    assert sorted(run.task_id for run in claimed) == ["task_due", "task_waiting"]


def plan_two(task: TaskRow, active: ActiveRuns) -> FirePlan:
    """Two runs for one fire (as a misfire with run_all makes)."""
    assert task.next_run_at is not None
    earlier = task.next_run_at - timedelta(minutes=1)
    plan = plan_one(task, active)
    plan.runs.insert(0, PlannedRun(earlier, RunStatus.QUEUED, fire_key(earlier)))
    return plan


async def test_a_fire_leaves_to_the_claim_the_runs_a_claim_would_not_start_at_once(store: SqlStore) -> None:
    busy = task_row("task_busy")  # exclusive (overlap skip), with a run running
    await store.insert_task(busy)
    running = new_run(busy, Trigger.MANUAL, NOW, NOW, Policy(), {})
    running.status, running.instance_id = "running", "inst_0"
    await store.insert_run(running)
    jittered = task_row("task_jittered")
    jittered.params = {"jitter": 5}
    await store.insert_task(jittered)

    fired = await store.fire_due(NOW, plan_one, rows_under_policy, 100, Slots("inst_1", 10))
    assert (fired.queued, fired.started.runs) == (2, [])

    await store.insert_task(task_row("task_two_runs"))  # exclusive, two runs in one fire
    fired = await store.fire_due(NOW, plan_two, rows_under_policy, 100, Slots("inst_1", 10))
    assert (fired.queued, fired.started.runs) == (2, [])
    assert [run.task_id for run in (await store.claim(NOW, "inst_1", 10)).runs] == ["task_two_runs"]


async def test_a_run_started_at_a_fire_whose_time_was_taken_already_is_not_started(store: SqlStore) -> None:
    await store.insert_task(task_row())
    await store.fire_due(NOW, plan_one, rows_for, 100)
    [queued] = (await store.claim(NOW, "inst_0", 10)).runs
    await store.finish_run(queued.id, {"status": "succeeded", "finished_at": NOW}, NOW)
    await store.update_task("task_1", {"next_run_at": NOW})  # as if another process had not seen the move

    fired = await store.fire_due(NOW, plan_one, rows_for, 100, Slots("inst_1", 10))

    assert (fired.queued, fired.started.runs) == (0, [])
    assert [run.id for run in await store.list_runs(None, "task_1", None, None, 10, None)] == [queued.id]


async def test_an_ended_run_counts_once_and_failures_in_a_row_pause_the_task(store: SqlStore) -> None:
    task = task_row("task_1", None)
    task.policy = {"pause_after_failures": 2}
    await store.insert_task(task)
    runs = [new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {}) for _ in range(4)]
    for run in runs:
        await store.insert_run(run)
    outcomes = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.FAILED]
    for run, status in zip(runs[:3], outcomes, strict=True):
        assert await store.finish_run(run.id, {"status": status.value, "finished_at": NOW}, NOW)
    assert not await store.finish_run(runs[0].id, {"status": "failed", "finished_at": NOW}, NOW)
    counted = await store.get_task("task_1")
    assert counted is not None
    assert (counted.run_count, counted.success_count, counted.failure_count) == (3, 1, 2)
    assert counted.consecutive_failures == 2 and counted.status == "paused"
    assert counted.last_run_status == "failed"


async def test_runs_ended_with_their_last_records_are_stored_and_counted_once(store: SqlStore) -> None:
    task = task_row("task_1", None)
    await store.insert_task(task)
    runs = [new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {}) for _ in range(3)]
    for run in runs:
        await store.insert_run(run)
    await store.finish_run(runs[2].id, {"status": "cancelled", "finished_at": NOW}, NOW)
    later = NOW + timedelta(seconds=1)

    async def end(run_id: str, status: str) -> None:
        line = LogRow(run_id=run_id, at=later, level="INFO", message=f"run {status}")
        step = StepRow(run_id=run_id, seq=0, step_id="n", uses="core.noop", phase="main", status="succeeded")
        await store.record_progress(
            run_id,
            [step_values(step)],
            [log_values(line)],
            {"steps_completed": 1},
            {"status": status, "finished_at": later},
        )

    async with anyio.create_task_group() as group:  # ended together: one group commit
        for run, status in zip(runs, ("succeeded", "failed", "succeeded"), strict=True):
            group.start_soon(end, run.id, status)

    stored = {run.id: await store.get_run(run.id) for run in runs}
    assert [(row.status, row.steps_completed) for row in stored.values() if row] == [
        ("succeeded", 1),
        ("failed", 1),
        ("cancelled", 0),  # already ended: its end is not overwritten, nor counted again
    ]
    for run in runs:  # the last records are stored either way
        assert [step.status for step in await store.list_steps(run.id)] == ["succeeded"]
        assert [line.message for line in await store.read_logs(run.id)][-1].startswith("run ")
    counted = await store.get_task("task_1")
    assert counted is not None
    assert (counted.run_count, counted.success_count, counted.failure_count) == (3, 1, 1)


async def test_runs_ended_since_a_time_are_counted_by_status_and_owner(store: SqlStore) -> None:
    task = task_row("task_1", None)
    await store.insert_task(task)
    ended = [
        ("succeeded", 10, NOW),
        ("succeeded", 30, NOW),
        ("failed", 5, NOW),
        ("failed", 7, NOW - timedelta(days=2)),
    ]
    for status, duration, at in ended:
        run = new_run(task, Trigger.MANUAL, at, at, Policy(), {})
        await store.insert_run(run)
        await store.finish_run(run.id, {"status": status, "finished_at": at, "duration_ms": duration}, at)

    since = NOW - timedelta(days=1)
    stats = await store.run_stats(None, since)
    assert {status: (count, float(avg or 0)) for status, (count, avg) in stats.items()} == {
        "succeeded": (2, 20.0),
        "failed": (1, 5.0),
    }
    assert await store.run_stats("local", since) == stats
    assert await store.run_stats("someone_else", since) == {}


async def test_a_manual_run_given_a_free_slot_goes_in_running_when_a_claim_would_take_it(
    store: SqlStore,
) -> None:
    task = task_row("task_a", None)
    await store.insert_task(task)
    first = new_run(task, Trigger.MANUAL, NOW, NOW, Policy(overlap=OverlapPolicy.ALLOW), {})

    started = await store.insert_run(first, Slots("inst_1", 1))

    assert [run.id for run in started.runs] == [first.id] and list(started.tasks) == ["task_a"]
    stored = await store.get_run(first.id)
    assert stored is not None and stored.status == "running" and stored.instance_id == "inst_1"
    assert started.runs[0] == stored  # what the engine executes is the stored row
    assert (await store.claim(NOW, "inst_2", 10)).runs == []  # nothing left for a claim


async def test_a_manual_run_is_queued_when_a_claim_would_not_take_it_now(store: SqlStore) -> None:
    task = task_row("task_a", None)
    await store.insert_task(task)
    slot = Slots("inst_1", 1)
    exclusive = Policy()  # overlap skip: one active run of the task at a time
    running = await store.insert_run(new_run(task, Trigger.MANUAL, NOW, NOW, exclusive, {}), slot)
    assert len(running.runs) == 1

    # Of an exclusive task with a run active: queued, for the claim once that run ends.
    behind = await store.insert_run(new_run(task, Trigger.MANUAL, NOW, NOW, exclusive, {}), slot)
    # No slot given: queued.
    other = task_row("task_b", None)
    await store.insert_task(other)
    unslotted = await store.insert_run(new_run(other, Trigger.MANUAL, NOW, NOW, Policy(), {}))
    # A ready queued run waits (the claim owes it the slot first): queued too.
    third = task_row("task_c", None)
    await store.insert_task(third)
    after_waiting = await store.insert_run(new_run(third, Trigger.MANUAL, NOW, NOW, Policy(), {}), slot)

    assert (behind.runs, unslotted.runs, after_waiting.runs) == ([], [], [])
    statuses = sorted(run.status for run in await store.list_runs(None, None, None, None, 10, None))
    assert statuses == ["queued", "queued", "queued", "running"]

"""Free slots are shared across principals by every claim and fire, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from orchestrator_mcp.domain.firing import ActiveRuns, FirePlan, PlannedRun, fire_key
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunStatus, TaskStatus, Trigger
from orchestrator_mcp.engine.run_rows import new_run
from orchestrator_mcp.store.base import Slots
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import RunRow, TaskRow

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(database_url)
    yield opened
    await opened.close()


async def task_of(
    store: SqlStore, owner: str, priority: int = 3, next_run_at: datetime | None = None, name: str = ""
) -> TaskRow:
    task = TaskRow(
        id=f"task_{owner}{name}_{priority}",
        owner=owner,
        title=f"{owner}'s",
        status=TaskStatus.ACTIVE.value,
        schedule={"kind": "interval", "expr": "1m"},
        anchor=NOW,
        pipeline=[{"id": "nap", "uses": "core.sleep", "with": {"seconds": 40}}],
        params={},
        policy={"priority": priority, "overlap": "allow"},
        next_run_at=next_run_at,
        created_at=NOW,
        updated_at=NOW,
    )
    await store.insert_task(task)
    return task


async def queue(store: SqlStore, task: TaskRow, count: int, at: datetime = NOW) -> list[RunRow]:
    """`count` runs of `task` queued and ready at `at`, as `run_now` queues them (a millisecond apart
    in fire time)."""
    runs = []
    policy = Policy.model_validate(task.policy)
    for n in range(count):
        run = new_run(task, Trigger.MANUAL, at + timedelta(milliseconds=n), at, policy, {})
        run.not_before = at
        await store.insert_run(run)
        runs.append(run)
    return runs


def owners(runs: list[RunRow]) -> list[str]:
    return [run.owner for run in runs]


async def test_slots_go_round_robin_across_principals_whatever_their_priorities(store: SqlStore) -> None:
    flood = await queue(store, await task_of(store, "alice", priority=5), 20, NOW - timedelta(seconds=30))
    [single] = await queue(store, await task_of(store, "bob", priority=1), 1)
    claimed = (await store.claim(NOW, "inst_1", 4)).runs
    # alice waited longest: she goes first, then they alternate (bob has one run only)
    assert owners(claimed) == ["alice", "bob", "alice", "alice"]
    assert [run.id for run in claimed] == [flood[0].id, single.id, flood[1].id, flood[2].id]


async def test_the_next_freed_slot_goes_to_the_principal_with_the_fewest_runs_running(
    store: SqlStore,
) -> None:
    """A priority-5 burst holding every slot does not keep another principal's run queued past the
    next slot that frees, however many more runs of the burst wait."""
    flood = await task_of(store, "alice", priority=5)
    await queue(store, flood, 20, NOW - timedelta(minutes=1))
    assert owners((await store.claim(NOW, "inst_1", 8)).runs) == ["alice"] * 8  # alone: every slot
    [waiting] = await queue(store, await task_of(store, "bob", priority=1), 1)
    [next_one] = (await store.claim(NOW, "inst_2", 1)).runs
    assert next_one.id == waiting.id
    assert owners((await store.claim(NOW, "inst_1", 2)).runs) == ["alice", "alice"]  # bob has none left


async def test_a_principals_own_runs_go_by_priority_then_fire_time(store: SqlStore) -> None:
    low, high = await task_of(store, "alice", priority=1), await task_of(store, "alice", priority=5)
    [early_low] = await queue(store, low, 1, NOW - timedelta(minutes=5))
    late_high = await queue(store, high, 2, NOW)
    others = await queue(store, await task_of(store, "bob"), 2, NOW - timedelta(minutes=1))
    claimed = [run.id for run in (await store.claim(NOW, "inst_1", 5)).runs]
    # Between the principals, bob's next run has waited longer than alice's (her high priority one),
    # so bob goes first; alice's own runs go high priority first, however long her low one waited.
    assert claimed == [others[0].id, late_high[0].id, others[1].id, late_high[1].id, early_low.id]


async def test_running_runs_of_every_instance_count_toward_a_principals_share(store: SqlStore) -> None:
    alice = await task_of(store, "alice")
    await queue(store, alice, 6, NOW - timedelta(minutes=1))
    await store.claim(NOW, "inst_elsewhere", 3)  # alice holds 3 slots of another instance
    await queue(store, await task_of(store, "bob"), 6)
    claimed = (await store.claim(NOW, "inst_here", 4)).runs
    assert owners(claimed) == ["bob", "bob", "bob", "alice"]


async def test_a_fire_that_starts_its_runs_shares_the_slots_as_a_claim_would(store: SqlStore) -> None:
    busy = await task_of(store, "alice", name="busy")
    await queue(store, busy, 2)
    await store.claim(NOW, "inst_0", 2)  # alice has 2 running, nothing queued
    for owner in ("alice", "bob"):
        await task_of(store, owner, priority=5 if owner == "alice" else 1, next_run_at=NOW)

    fired = await store.fire_due(NOW, plan_one, rows_under_policy, 100, Slots("inst_1", 1))

    assert owners(fired.started.runs) == ["bob"]
    assert fired.queued == 1
    [left] = (await store.claim(NOW, "inst_1", 1)).runs
    assert left.owner == "alice"


async def test_claims_racing_on_several_stores_start_each_run_once_and_share_by_principal(
    store: SqlStore, database_url: str
) -> None:
    for owner in ("alice", "bob", "carol"):
        await queue(store, await task_of(store, owner), 40)
    racers = [store, *[await SqlStore.open(database_url) for _ in range(2)]]
    claimed: list[RunRow] = []

    async def claim(racer: SqlStore, instance: str) -> None:
        claimed.extend((await racer.claim(NOW, instance, 6)).runs)

    async with anyio.create_task_group() as group:
        for n, racer in enumerate(racers):
            group.start_soon(claim, racer, f"inst_{n}")
    for racer in racers[1:]:
        await racer.close()
    assert len({run.id for run in claimed}) == len(claimed) == 18
    # Whether the claims ran one after another or together, each saw the principals even.
    assert Counter(owners(claimed)) == {"alice": 6, "bob": 6, "carol": 6}


def plan_one(task: TaskRow, active: ActiveRuns) -> FirePlan:
    assert task.next_run_at is not None
    return FirePlan(
        runs=[PlannedRun(task.next_run_at, RunStatus.QUEUED, fire_key(task.next_run_at))],
        next_run_at=task.next_run_at + timedelta(minutes=1),
    )


def rows_under_policy(task: TaskRow, plan: FirePlan) -> list[dict[str, object]]:
    policy = Policy.model_validate(task.policy)
    return [
        new_run(task, Trigger.SCHEDULE, planned.scheduled_for, NOW, policy, {}).model_dump()
        | {"fire_key": planned.fire_key}
        for planned in plan.runs
    ]

"""Fires skipped by the overlap policy are one record per stretch, on SQLite and PostgreSQL.

The engine's own firing (its planner and run rows) drives the store on a manual clock; runs are
claimed and ended through the store, as the engine would, so no run executes and nothing waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunStatus, TaskStatus, Trigger
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.run_rows import new_run
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import RunRow, TaskRow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(database_url)
    yield opened
    await opened.close()


class Loop:
    """A task firing every second on a manual clock, its runs claimed and ended by hand."""

    def __init__(self, store: SqlStore, policy: dict[str, Any] | None = None) -> None:
        self.store = store
        self.clock = ManualClock(T0)
        runner = Runner(store, Catalog([]), self.clock, {}, RunEvents())
        self.engine = Engine(store, runner, self.clock, EngineSettings())  # never executing: starts nothing
        self.task = TaskRow(
            id="task_1",
            owner="local",
            title="every second",
            status=TaskStatus.ACTIVE.value,
            schedule={"kind": "interval", "expr": "1s"},
            anchor=T0 - SECOND,
            pipeline=[{"id": "nap", "uses": "core.sleep", "with": {"seconds": 10}}],
            params={},
            policy=policy or {},
            next_run_at=T0,
            created_at=T0,
            updated_at=T0,
        )

    async def fire_until(self, seconds: int) -> None:
        """Move the clock a second at a time up to T0 + `seconds`, firing each second."""
        while self.clock.now() < T0 + seconds * SECOND:
            self.clock.advance(1)
            await self.engine.fire_due(self.clock.now())

    async def start(self) -> RunRow:
        """Claim the task's queued run, as this instance's engine would at this moment."""
        [run] = (await self.store.claim(self.clock.now(), "inst_1", 1)).runs
        return run

    async def end(self, run: RunRow) -> None:
        now = self.clock.now()
        assert await self.store.finish_run(run.id, {"status": "succeeded", "finished_at": now}, now)

    async def skipped(self) -> list[RunRow]:
        runs = await self.store.list_runs(None, "task_1", RunStatus.SKIPPED.value, None, 500, None)
        return sorted(runs, key=lambda run: run.scheduled_for)


def spans(records: list[RunRow]) -> list[tuple[int | None, datetime, datetime | None]]:
    return [(run.skipped_fires, run.scheduled_for, run.last_scheduled_for) for run in records]


async def test_fires_skipped_while_a_run_lasts_are_one_record_and_a_new_run_starts_a_new_one(
    store: SqlStore,
) -> None:
    loop = Loop(store)
    await store.insert_task(loop.task)
    await loop.engine.fire_due(T0)
    first = await loop.start()
    await loop.fire_until(9)  # the run lasts 10 s: nine fires are skipped
    [record] = await loop.skipped()
    assert spans([record]) == [(9, T0 + SECOND, T0 + 9 * SECOND)]
    assert record.error == {
        "step_id": None,
        "type": "overlap",
        "message": "skipped 9 fire times from 2026-03-02T09:00:01Z to 2026-03-02T09:00:09Z: "
        "a run of this task was still active (overlap policy skip)",
    }
    assert (record.queued_at, record.finished_at) == (T0 + SECOND, T0 + 9 * SECOND)
    loop.clock.advance(1)
    await loop.end(first)
    await loop.engine.fire_due(loop.clock.now())  # nothing active: it runs
    await loop.start()
    await loop.fire_until(12)  # a new run started: the next skips are a record of their own
    assert spans(await loop.skipped()) == [
        (9, T0 + SECOND, T0 + 9 * SECOND),
        (2, T0 + 11 * SECOND, T0 + 12 * SECOND),
    ]
    runs = await store.list_runs(None, "task_1", None, None, 500, None)
    assert sorted(run.status for run in runs) == ["running", "skipped", "skipped", "succeeded"]
    assert all(run.skipped_fires is None and run.last_scheduled_for is None for run in runs if run.started_at)
    task = await store.get_task("task_1")
    assert task is not None and task.run_count == 1  # skipped records are not counted


async def test_a_stretch_longer_than_a_minute_starts_a_new_record_each_minute(store: SqlStore) -> None:
    loop = Loop(store)
    await store.insert_task(loop.task)
    await loop.engine.fire_due(T0)
    await loop.start()
    await loop.fire_until(150)
    assert spans(await loop.skipped()) == [
        (60, T0 + SECOND, T0 + 60 * SECOND),
        (60, T0 + 61 * SECOND, T0 + 120 * SECOND),
        (30, T0 + 121 * SECOND, T0 + 150 * SECOND),
    ]


async def test_a_run_that_started_and_ended_between_two_skipped_fires_ends_the_stretch(
    store: SqlStore,
) -> None:
    """The task is busy at both fires (a manual run waits behind the running one), but the one that
    waited ran in between: the skips are not consecutive."""
    loop = Loop(store)
    await store.insert_task(loop.task)
    await loop.engine.fire_due(T0)
    first = await loop.start()
    await store.insert_run(manual_run(loop))  # waits: the task is exclusive
    await loop.fire_until(2)
    loop.clock.advance(0.2)
    await loop.end(first)
    waited = await loop.start()
    loop.clock.advance(0.2)
    await loop.end(waited)
    await store.insert_run(manual_run(loop))  # queued: the task is active at the next fire
    await loop.fire_until(4)
    assert spans(await loop.skipped()) == [
        (2, T0 + SECOND, T0 + 2 * SECOND),
        (2, T0 + 3 * SECOND, T0 + 4 * SECOND),
    ]


async def test_a_fire_that_queued_a_run_in_between_ends_the_stretch(store: SqlStore) -> None:
    """The run queued at 2 s never started (its process died, say): the fires skipped at 1 s and at
    3 s are not consecutive, and a record standing for both would seem to hold 2 s too."""
    loop = Loop(store)
    await store.insert_task(loop.task)
    await loop.engine.fire_due(T0)
    first = await loop.start()
    await loop.fire_until(1)
    loop.clock.advance(0.5)
    await loop.end(first)
    await loop.fire_until(3)  # 2 s: nothing active, a run is queued; 3 s: it is, the fire skipped
    assert spans(await loop.skipped()) == [
        (1, T0 + SECOND, T0 + SECOND),
        (1, T0 + 3 * SECOND, T0 + 3 * SECOND),
    ]


async def test_buffer_one_skips_coalesce_while_the_buffered_run_waits(store: SqlStore) -> None:
    loop = Loop(store, {"overlap": "buffer_one"})
    await store.insert_task(loop.task)
    await loop.engine.fire_due(T0)
    await loop.start()
    await loop.fire_until(5)  # the first fire keeps one waiting run, the next four are skipped
    runs = await store.list_runs(None, "task_1", None, None, 500, None)
    assert sorted(run.status for run in runs) == ["queued", "running", "skipped"]
    [record] = await loop.skipped()
    assert spans([record]) == [(4, T0 + 2 * SECOND, T0 + 5 * SECOND)]
    assert (
        record.error is not None and "already waiting (overlap policy buffer_one)" in record.error["message"]
    )


async def test_a_misfire_record_carries_its_count_and_span_in_the_same_fields(store: SqlStore) -> None:
    loop = Loop(store, {"misfire": "skip"})
    await store.insert_task(loop.task)
    loop.clock.advance(90)  # no server ran for a minute and a half
    await loop.engine.fire_due(loop.clock.now())
    [record] = await loop.skipped()
    assert spans([record]) == [(91, T0, T0 + 90 * SECOND)]
    assert record.error is not None and record.error["type"] == "misfire"
    await loop.fire_until(92)  # the next fire queues a run, the one after is skipped: a record of its own
    missed, skipped = await loop.skipped()
    assert missed.id == record.id and missed.skipped_fires == 91
    assert skipped.skipped_fires == 1 and skipped.error is not None and skipped.error["type"] == "overlap"


async def test_fires_missed_in_between_end_the_stretch(store: SqlStore) -> None:
    """The run is still active (another instance ran it) after fire times nobody claimed: the
    missed ones are a misfire record, and the next skip is not folded into the record before them."""
    loop = Loop(store)
    await store.insert_task(loop.task)
    await loop.engine.fire_due(T0)
    await loop.start()
    await loop.fire_until(2)
    loop.clock.advance(20)  # fire times 3 to 22 were not claimed in time
    await loop.engine.fire_due(loop.clock.now())
    [before, missed, after] = await loop.skipped()
    assert spans([before, after]) == [
        (2, T0 + SECOND, T0 + 2 * SECOND),
        (1, T0 + 22 * SECOND, T0 + 22 * SECOND),
    ]
    assert missed.error is not None and missed.error["type"] == "misfire"
    assert spans([missed]) == [(19, T0 + 3 * SECOND, T0 + 21 * SECOND)]


def manual_run(loop: Loop) -> RunRow:
    now = loop.clock.now()
    return new_run(loop.task, Trigger.MANUAL, now, now, Policy.model_validate(loop.task.policy), {})

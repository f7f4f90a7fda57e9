"""Run retention on a real SQLite file with a manual clock: old runs go with their steps and logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
from sqlalchemy import text

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunStatus, TaskStatus, Trigger
from orchestrator_mcp.engine.events import RunEvents
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.scheduler import Engine, EngineSettings, new_run
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import LogRow, StepRow, TaskRow
from tests.conftest import log_values, step_values

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def task_row(task_id: str) -> TaskRow:
    return TaskRow(
        id=task_id,
        owner="local",
        title=task_id,
        status=TaskStatus.PAUSED.value,
        schedule={"kind": "manual"},
        pipeline=[{"id": "n", "uses": "core.noop"}],
        params={},
        policy={},
        created_at=NOW - timedelta(days=400),
        updated_at=NOW,
    )


async def add_runs(store: SqlStore, task: TaskRow, ages_days: list[float], status: RunStatus) -> list[str]:
    ids = []
    for age in ages_days:
        at = NOW - timedelta(days=age)
        run = new_run(task, Trigger.MANUAL, at, at, Policy(), {})
        run.status = status.value
        await store.insert_run(run)
        await store.record_progress(
            run.id,
            [step_values(StepRow(run_id=run.id, seq=0, step_id="n", uses="core.noop", status="succeeded"))],
            [log_values(LogRow(run_id=run.id, at=at, level="INFO", message="done"))],
            None,
        )
        ids.append(run.id)
    return ids


async def counts(store: SqlStore) -> tuple[int, ...]:
    """(runs, steps, log lines) in the file."""
    tables = ("runs", "steps", "run_logs")
    return await store.database.read(
        lambda conn: tuple(
            int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()) for table in tables
        )
    )


async def test_old_runs_are_deleted_with_steps_and_logs_keeping_the_newest_100_per_task(
    tmp_path: Path,
) -> None:
    store = await SqlStore.open(f"sqlite+aiosqlite:///{tmp_path / 'retention.db'}")
    try:
        busy, quiet = task_row("task_busy"), task_row("task_quiet")
        await store.insert_task(busy)
        await store.insert_task(quiet)
        # busy: 120 runs, 40 days old and more (only the newest 100 survive) + 5 recent ones.
        old_busy = await add_runs(store, busy, [40 + n / 10 for n in range(120)], RunStatus.SUCCEEDED)
        recent = await add_runs(store, busy, [1, 2, 3, 4, 5], RunStatus.FAILED)
        # quiet: 3 very old runs, all kept (fewer than 100), and an old run still queued.
        kept_quiet = await add_runs(store, quiet, [300, 301, 302], RunStatus.SUCCEEDED)
        await add_runs(store, busy, [500], RunStatus.QUEUED)

        deleted = await store.delete_expired_runs(NOW - timedelta(days=30), keep_per_task=100)

        assert deleted == 25  # 125 ended runs of busy, the newest 100 kept
        remaining = {run.id for run in await store.list_runs(None, None, None, None, 500, None)}
        assert set(recent) <= remaining and set(kept_quiet) <= remaining
        assert set(old_busy[:95]) <= remaining and not set(old_busy[95:]) & remaining
        assert await counts(store) == (104, 104, 104)  # 101 of busy (its old queued run too), 3 of quiet
        assert await store.delete_expired_runs(NOW - timedelta(days=30), keep_per_task=100) == 0
    finally:
        await store.close()


async def test_the_engine_applies_retention_at_start_up_and_every_housekeeping_period(
    tmp_path: Path,
) -> None:
    store = await SqlStore.open(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    clock = ManualClock(NOW)
    try:
        task = task_row("task_1")
        await store.insert_task(task)
        await add_runs(store, task, [40], RunStatus.SUCCEEDED)
        settings = EngineSettings(run_retention_days=30, retention_keep_per_task=0, housekeeping_seconds=600)
        engine = Engine(store, Runner(store, Catalog([]), clock, {}, RunEvents()), clock, settings)
        async with anyio.create_task_group() as group:
            await group.start(engine.run)
            assert await counts(store) == (0, 0, 0)  # done once at start-up

            await add_runs(store, task, [30 - 300 / 86400], RunStatus.SUCCEEDED)  # 30 days old in 5 min
            await clock.sleeper_at(NOW + timedelta(seconds=600))  # housekeeping naps ten minutes
            clock.advance(599)  # which this cannot wake
            assert (await counts(store))[0] == 1  # old enough, but not yet time to look
            clock.advance(1)  # ten minutes after start-up: housekeeping
            with anyio.fail_after(30):
                while True:
                    if (await counts(store))[0] == 0:
                        break
                    await anyio.sleep(0.02)
            group.cancel_scope.cancel()
    finally:
        await store.close()

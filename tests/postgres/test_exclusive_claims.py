"""An exclusive task runs one run at a time even when two instances claim in overlapping transactions."""

from __future__ import annotations

from sqlalchemy import select, text, update

from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.engine.scheduler import new_run
from orchestrator_mcp.store.engine import PostgresDatabase
from orchestrator_mcp.store.sql import RUNS, TASKS, SqlStore
from tests.store.test_sql_store import NOW, task_row


async def test_a_claim_that_overlaps_another_does_not_start_a_second_run_of_the_task(pg_url: str) -> None:
    store = await SqlStore.open(pg_url)
    await store.insert_task(task_row("task_1", None))
    task = await store.get_task("task_1")
    assert task is not None
    first, second = (new_run(task, Trigger.MANUAL, NOW, NOW, Policy(), {}) for _ in range(2))
    for run in (first, second):
        await store.insert_run(run)
    assert isinstance(store.database, PostgresDatabase)
    async with store.database.engine.connect() as other:
        # Another instance is mid-claim: it holds the task and has marked the first run running,
        # but has not committed yet.
        await other.execute(select(TASKS.c.id).where(TASKS.c.id == "task_1").with_for_update())
        await other.execute(
            update(RUNS).where(RUNS.c.id == first.id).values(status="running", instance_id="inst_a")
        )
        assert (await store.claim(NOW, "inst_b", 5)).runs == []
        await other.commit()
    running = await store.list_runs(None, "task_1", "running", None, 10, None)
    assert [run.id for run in running] == [first.id]
    # Once the first run has ended, the second is claimable.
    ended = text("UPDATE runs SET status = 'succeeded' WHERE id = :id")
    await store.database.write(lambda conn: conn.execute(ended, {"id": first.id}))
    assert [run.id for run in (await store.claim(NOW, "inst_b", 5)).runs] == [second.id]
    await store.close()

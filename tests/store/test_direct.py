"""Progress writes straight on sqlite3's cursor store exactly what SQLAlchemy would have stored."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, exc, insert, select

from orchestrator_mcp.domain.policy import OverlapPolicy, Policy
from orchestrator_mcp.domain.run import Trigger
from orchestrator_mcp.engine.scheduler import new_run
from orchestrator_mcp.store.base import Claim
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.sql.dialect import ONE_BY_ONE
from orchestrator_mcp.store.sql.rows import model
from orchestrator_mcp.store.sql.statements import (
    LOG_INSERT,
    LOGS,
    RUNS,
    TASKS,
    add_run_to_counters,
    end_active_run,
    run_params,
    set_run_columns,
)
from orchestrator_mcp.store.sql.statements import STEPS as STEPS_TABLE
from orchestrator_mcp.store.tables import LogRow, RunRow, StepRow, TaskRow
from tests.conftest import log_values, step_values
from tests.store.test_sql_store import task_row

AT = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)

STEPS = [
    StepRow(
        run_id="",
        seq=0,
        step_id="fetch",
        uses="core.echo",
        status="succeeded",
        attempts=2,
        started_at=AT,
        finished_at=AT,
        duration_ms=0,
        arguments={"text": "héllo ✓", "nested": [1, 2.5, None, {"deep": True}]},
        result={"echoed": "héllo ✓", "none": None},
        result_size=42,
    ),
    StepRow(
        run_id="", seq=1, step_id="next", uses="core.noop", status="running", started_at=AT, arguments={}
    ),
    StepRow(
        run_id="", seq=2, step_id="later", uses="core.fail", status="pending", error="a\nb", skip_reason=None
    ),
]
LOGS_ = [
    LogRow(run_id="", at=AT, level="INFO", message="calling core.echo", step_id="fetch"),
    LogRow(run_id="", at=AT, level="ERROR", message="ünïcode ✓ and 'quotes'", step_id=None),
]
RUN_VALUES: dict[str, Any] = {"steps_completed": 1, "output": {"list": [1, "two"]}, "started_at": AT}


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqlStore, SqlStore, str]]:
    """Two stores holding the same task and run; returns them and the run's id."""
    direct = await SqlStore.open(f"sqlite:///{tmp_path / 'direct.db'}")
    alchemy = await SqlStore.open(f"sqlite:///{tmp_path / 'alchemy.db'}")
    task = task_row()
    run = new_run(task, Trigger.MANUAL, AT, AT, Policy(), {})
    for store in (direct, alchemy):
        await store.insert_task(task)
        await store.insert_run(run)
    yield direct, alchemy, run.id
    await direct.close()
    await alchemy.close()


def _dumps(run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    steps = [step.model_copy(update={"run_id": run_id}).model_dump() for step in STEPS]
    logs = [line.model_copy(update={"run_id": run_id}).model_dump(exclude={"id"}) for line in LOGS_]
    return steps, logs


def _raw(path: Path, run_id: str) -> list[list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as conn:
        return [
            conn.execute("SELECT * FROM steps ORDER BY seq").fetchall(),
            conn.execute("SELECT * FROM run_logs ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchall(),
            conn.execute("SELECT * FROM tasks").fetchall(),
        ]


async def test_the_direct_write_stores_the_same_bytes_as_sqlalchemy(
    stores: tuple[SqlStore, SqlStore, str], tmp_path: Path
) -> None:
    direct, alchemy, run_id = stores
    steps, logs = _dumps(run_id)

    def through_sqlalchemy(conn: Connection) -> None:
        conn.execute(alchemy._step_upsert.statement, steps)
        conn.execute(insert(LOGS), logs)
        conn.execute(set_run_columns(tuple(sorted(RUN_VALUES))), [run_params(run_id, RUN_VALUES)])

    for _ in range(2):  # the second time, every step row is an update of the first
        await direct.record_progress(
            run_id,
            [step_values(step.model_copy(update={"run_id": run_id})) for step in STEPS],
            [log_values(line.model_copy(update={"run_id": run_id})) for line in LOGS_],
            RUN_VALUES,
        )
        await alchemy.database.write(through_sqlalchemy)

    stored = _raw(tmp_path / "direct.db", run_id)
    assert stored == _raw(tmp_path / "alchemy.db", run_id)
    assert len(stored[0]) == 3 and len(stored[1]) == 4
    read = await direct.list_steps(run_id)
    assert [step.model_dump() for step in read] == steps


async def test_a_refused_row_raises_the_sqlalchemy_error_and_writes_nothing(
    stores: tuple[SqlStore, SqlStore, str], tmp_path: Path
) -> None:
    direct, _, run_id = stores
    before = _raw(tmp_path / "direct.db", run_id)
    steps, logs = _dumps(run_id)
    logs[1]["message"] = None  # NOT NULL

    def work(conn: Connection) -> None:
        DirectStatement(direct._step_upsert.statement).executemany(conn, steps)
        LOG_INSERT.executemany(conn, logs)

    with pytest.raises(exc.IntegrityError, match="NOT NULL"):
        await direct.database.write(work)
    assert _raw(tmp_path / "direct.db", run_id) == before


async def test_ending_a_run_directly_stores_and_counts_what_sqlalchemy_would(
    stores: tuple[SqlStore, SqlStore, str], tmp_path: Path
) -> None:
    direct, alchemy, run_id = stores
    end: dict[str, Any] = {
        "status": "failed",
        "finished_at": AT,
        "duration_ms": 12,
        "error": {"step_id": "fetch", "type": "tool_error", "message": "nö"},
    }

    def through_sqlalchemy(conn: Connection) -> bool:
        ended = conn.execute(end_active_run(tuple(sorted(end))).statement, run_params(run_id, end)).first()
        if ended is None:
            return False
        params = {
            "task_key": ended.task_id,
            "succeeded": 0,
            "new_last_run_at": ended.started_at,
            "new_last_run_status": "failed",
        }
        assert conn.execute(add_run_to_counters(True).statement, params).first() is not None
        return True

    started = datetime(2026, 3, 29, 0, 59, 58, 123_456, tzinfo=UTC)
    for store in (direct, alchemy):
        await store.record_progress(run_id, [], [], {"started_at": started})
    assert await direct.finish_run(run_id, end, AT)
    assert await alchemy.database.write(through_sqlalchemy)
    assert _raw(tmp_path / "direct.db", run_id) == _raw(tmp_path / "alchemy.db", run_id)
    assert not await direct.finish_run(run_id, end, AT)  # already ended: not counted twice
    assert _raw(tmp_path / "direct.db", run_id) == _raw(tmp_path / "alchemy.db", run_id)
    task = await direct.get_task("task_1")
    assert task is not None and (task.run_count, task.failure_count, task.consecutive_failures) == (1, 1, 1)
    assert task.last_run_at == started


async def test_fired_runs_are_inserted_as_sqlalchemy_would_and_a_taken_fire_time_is_skipped(
    stores: tuple[SqlStore, SqlStore, str], tmp_path: Path
) -> None:
    direct, alchemy, _ = stores
    task = task_row()
    running = {"status": "running", "instance_id": "instance_1", "started_at": AT}
    fired = [
        new_run(task, Trigger.SCHEDULE, AT, AT, Policy(), {"n": 1}).model_dump(),
        new_run(task, Trigger.SCHEDULE, AT, AT, Policy(), {}).model_dump() | {"status": "skipped"},
        new_run(task, Trigger.SCHEDULE, AT, AT, Policy(), {}).model_dump() | running,
    ]
    fired[0]["fire_key"], fired[1]["fire_key"], fired[2]["fire_key"] = "2026-03-29T00:59:59.999999Z", "a", "b"
    again = [
        new_run(task, Trigger.SCHEDULE, AT, AT, Policy(), {}).model_dump() | {"fire_key": key} | fields
        for key, fields in ((fired[0]["fire_key"], {}), ("b", running), ("c", running))
    ]

    inserted = await direct.database.write(lambda conn: direct._insert_fired(conn, fired))
    assert inserted == (1, {fired[2]["id"]})
    inserted = await direct.database.write(lambda conn: direct._insert_fired(conn, again))
    assert inserted == (0, {again[2]["id"]})  # two fire times were taken
    await alchemy.database.write(lambda conn: conn.execute(alchemy._insert_runs.statement, fired))

    with sqlite3.connect(tmp_path / "direct.db") as conn:
        stored = conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
    with sqlite3.connect(tmp_path / "alchemy.db") as conn:
        assert [row for row in stored if row[0] != again[2]["id"]] == conn.execute(
            "SELECT * FROM runs ORDER BY id"
        ).fetchall()
    assert len(stored) == 5


async def test_a_claim_read_directly_gives_the_rows_sqlalchemy_reads(
    stores: tuple[SqlStore, SqlStore, str],
) -> None:
    direct, _, run_id = stores
    await direct.record_progress(run_id, [], [], RUN_VALUES | {"params": {"x": [1, {"y": "é"}]}})
    claim = await direct.claim(datetime.now(UTC), "instance_1", 10)
    assert [run.id for run in claim.runs] == [run_id]
    assert claim.runs[0] == await direct.get_run(run_id)
    assert claim.runs[0].status == "running" and claim.runs[0].params == {"x": [1, {"y": "é"}]}
    assert claim.tasks == {"task_1": await direct.get_task("task_1")}


async def test_a_large_claim_through_in_lists_gives_what_small_direct_claims_give(tmp_path: Path) -> None:
    """Claims of more than ONE_BY_ONE runs (and tasks) take the IN-list path: same rows, same order."""
    policy = Policy(overlap=OverlapPolicy.ALLOW)
    tasks = [task_row(f"task_{n:03d}") for n in range(ONE_BY_ONE + 6)]
    runs = [new_run(task, Trigger.MANUAL, AT, AT, policy, {"n": n}) for n, task in enumerate(tasks)]
    claims: list[Claim] = []
    for name, limits in (("large", [len(runs)]), ("small", [ONE_BY_ONE, len(runs) - ONE_BY_ONE])):
        store = await SqlStore.open(f"sqlite:///{tmp_path / name}.db")
        for task in tasks:
            await store.insert_task(task)
        for run in runs:
            await store.insert_run(run)
        parts = [await store.claim(AT, "instance_1", limit) for limit in limits]
        claims.append(Claim([run for part in parts for run in part.runs], {}))
        for part in parts:
            claims[-1].tasks.update(part.tasks)
        assert [run.id for run in claims[-1].runs] == sorted(run.id for run in runs)
        assert claims[-1].runs[-1] == await store.get_run(claims[-1].runs[-1].id)
        await store.close()
    large, small = claims
    assert large.runs == small.runs and all(run.status == "running" for run in large.runs)
    assert large.tasks == small.tasks and set(large.tasks) == {task.id for task in tasks}


async def test_a_run_inserted_and_read_back_directly_matches_sqlalchemy(
    stores: tuple[SqlStore, SqlStore, str], tmp_path: Path
) -> None:
    direct, alchemy, _ = stores
    run = new_run(task_row(), Trigger.MANUAL, AT, AT, Policy(), {"text": "héllo ✓", "list": [1, None, 2.5]})
    await direct.insert_run(run)
    await alchemy.database.write(lambda conn: conn.execute(insert(RUNS).values(**run.model_dump())))
    assert _raw(tmp_path / "direct.db", run.id) == _raw(tmp_path / "alchemy.db", run.id)

    await direct.record_progress(
        run.id, [step_values(step.model_copy(update={"run_id": run.id})) for step in STEPS], [], None
    )

    def through_sqlalchemy(conn: Connection) -> tuple[Any, ...]:
        read_run = conn.execute(select(RUNS).where(RUNS.c.id == run.id)).first()
        read_task = conn.execute(select(TASKS).where(TASKS.c.id == run.task_id)).first()
        read_steps = conn.execute(
            select(STEPS_TABLE).where(STEPS_TABLE.c.run_id == run.id).order_by(STEPS_TABLE.c.seq)
        ).all()
        assert read_run is not None and read_task is not None
        return (
            model(RunRow, read_run),
            model(TaskRow, read_task),
            [model(StepRow, row) for row in read_steps],
        )

    expected = await direct.database.read(through_sqlalchemy)
    read = (await direct.get_run(run.id), await direct.get_task(run.task_id), await direct.list_steps(run.id))
    assert read == expected and read[0] == run and len(read[2]) == 3
    assert await direct.get_run("run_missing") is None and await direct.get_task("task_missing") is None


async def test_records_of_a_run_no_longer_stored_are_dropped_and_the_others_kept(
    stores: tuple[SqlStore, SqlStore, str], tmp_path: Path
) -> None:
    direct, _, run_id = stores
    gone = "run_deleted_with_its_task"
    await direct.record_progress(
        gone,
        [step_values(step.model_copy(update={"run_id": gone})) for step in STEPS],
        [log_values(line.model_copy(update={"run_id": gone})) for line in LOGS_],
        {"steps_completed": 1},
    )
    await direct.append_logs(
        [log_values(line.model_copy(update={"run_id": rid})) for rid in (gone, run_id) for line in LOGS_]
    )
    with sqlite3.connect(tmp_path / "direct.db") as conn:
        assert conn.execute("SELECT count(*) FROM steps").fetchone() == (0,)
        assert conn.execute("SELECT DISTINCT run_id FROM run_logs").fetchall() == [(run_id,)]

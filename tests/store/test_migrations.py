"""Schema upgrades keep users' data: a version-1 database is brought to the current version."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.dialects import sqlite

from orchestrator_mcp.store.engine import migrate, open_database
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.sql.dialect import NEXT_READY_SQLITE, ended_since
from orchestrator_mcp.store.sql.statements import ACTIVE_COUNTS, LATEST_SKIP, RUNNING_BY_OWNER, WAITING_OWNERS
from orchestrator_mcp.store.tables import SCHEMA_VERSION

NEW_INDEXES = {"ix_runs_recent", "ix_runs_task_recent", "ix_runs_owner_recent", "ix_tasks_recent"}


async def indexes(database_url: str) -> set[str]:
    database = open_database(database_url)
    if database.dialect == "sqlite":
        query = text("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        query = text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    names = await database.read(lambda conn: {row[0] for row in conn.execute(query)})
    await database.dispose()
    return names


async def upgraded_from(database_url: str, make_old: Callable[[Connection], None]) -> int:
    """Make a current database, turn it into an old one with `make_old`, and migrate it again.

    Checks the stored version is the current one; returns the version the upgrade found.
    """
    database = open_database(database_url)
    await migrate(database)
    await database.write(make_old)
    found = await migrate(database)
    version = await database.read(
        lambda conn: conn.execute(text("SELECT version FROM schema_version")).scalar_one()
    )
    await database.dispose()
    assert version == SCHEMA_VERSION
    return found


async def query_plan(sqlite_url: str, sql: str, binds: tuple[Any, ...] = ()) -> str:
    """SQLite's EXPLAIN QUERY PLAN of `sql` on a new store, as one line."""
    store = await SqlStore.open(sqlite_url)
    explained = "EXPLAIN QUERY PLAN " + sql
    plan = await store.database.read(
        lambda conn: " ".join(str(row[-1]) for row in conn.exec_driver_sql(explained, binds))
    )
    await store.close()
    return plan


def make_version_1(conn: Connection) -> None:
    """Old indexes, old version number, and a task row written by that version."""
    for name in NEW_INDEXES:
        conn.execute(text(f"DROP INDEX {name}"))
    conn.execute(text("CREATE INDEX ix_runs_task ON runs (task_id, queued_at)"))
    conn.execute(text("UPDATE schema_version SET version = 1"))
    insert_old_task(conn)


def insert_old_task(conn: Connection) -> None:
    """A task row written by an old version."""
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    columns = (
        "id, owner, title, description, status, schedule, pipeline, params, policy, run_count, "
        "success_count, failure_count, consecutive_failures, created_at, updated_at"
    )
    values = "'task_old', 'local', 'kept', '', 'active', :schedule, '[]', '{}', '{}', 0, 0, 0, 0, :now, :now"
    conn.execute(
        text(f"INSERT INTO tasks ({columns}) VALUES ({values})"),
        {"now": now, "schedule": '{"kind": "manual"}'},
    )


async def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_rows(database_url: str) -> None:
    assert await upgraded_from(database_url, make_version_1) == 1
    names = await indexes(database_url)
    assert NEW_INDEXES <= names and "ix_runs_task" not in names
    store = await SqlStore.open(database_url)
    task = await store.get_task("task_old")
    await store.close()
    assert task is not None and task.title == "kept"


async def test_listing_pages_use_an_index_instead_of_sorting(sqlite_url: str) -> None:
    details = await query_plan(sqlite_url, "SELECT * FROM runs ORDER BY queued_at DESC, id DESC LIMIT 51")
    assert "ix_runs_recent" in details and "TEMP B-TREE" not in details


async def test_a_claim_reads_a_principals_queue_in_index_order_instead_of_sorting_it(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    claim = str(store._claimable.statement.compile(dialect=sqlite.dialect()))
    await store.close()
    binds = ("queued", "alice", "2026-01-01 00:00:00.000000", "running", 4, 0)
    details = await query_plan(sqlite_url, claim, binds)
    assert "ix_runs_ready (status=? AND owner=?)" in details and "TEMP B-TREE" not in details
    # An exclusive run's check for a running run of its task seeks the task's runs by status.
    assert "ix_runs_task_status (task_id=? AND status=?)" in details


async def test_the_principals_waiting_and_running_are_read_from_the_index_not_the_queue(
    sqlite_url: str,
) -> None:
    waiting = await query_plan(sqlite_url, str(WAITING_OWNERS.statement))
    assert "SCAN runs" not in waiting and "ix_runs_ready (status=?)" in waiting
    assert "TEMP B-TREE" not in waiting
    running = str(RUNNING_BY_OWNER.statement.compile(dialect=sqlite.dialect()))
    details = await query_plan(sqlite_url, running, ("running",))
    assert "COVERING INDEX ix_runs_ready (status=?)" in details and "TEMP B-TREE" not in details


async def test_a_fires_overlap_check_reads_only_the_tasks_active_runs(sqlite_url: str) -> None:
    """It read every run of the task through an index without the status (slower as history grew)."""
    of_two_tasks = ACTIVE_COUNTS.params(ids=["task_1", "task_2"])
    counts = str(of_two_tasks.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    details = await query_plan(sqlite_url, counts)
    assert "COVERING INDEX ix_runs_task_status (task_id=? AND status=?)" in details
    latest = str(LATEST_SKIP.statement.compile(dialect=sqlite.dialect()))
    details = await query_plan(sqlite_url, latest, ("task_1", "running", "task_1", "skipped", 1, 0))
    assert details.count("ix_runs_task_status (task_id=? AND status=?)") == 2
    assert "TEMP B-TREE" not in details


async def test_the_next_ready_time_is_read_from_an_index_not_a_scan_of_the_queue(sqlite_url: str) -> None:
    details = await query_plan(sqlite_url, str(NEXT_READY_SQLITE.statement))
    assert "ix_runs_queued_not_before" in details and "SCAN runs" not in details


def make_version_3(conn: Connection) -> None:
    conn.execute(text("DROP INDEX ix_runs_ready"))
    conn.execute(text("DROP INDEX ix_runs_task_status"))
    conn.execute(text("DROP INDEX ix_runs_queued_not_before"))
    conn.execute(text("CREATE INDEX ix_runs_claim ON runs (status, priority, scheduled_for)"))
    conn.execute(text("UPDATE schema_version SET version = 3"))


async def test_a_version_3_database_gets_the_queue_indexes(database_url: str) -> None:
    assert await upgraded_from(database_url, make_version_3) == 3
    names = await indexes(database_url)
    assert {"ix_runs_ready", "ix_runs_queued_not_before"} <= names and "ix_runs_claim" not in names


def make_version_4(conn: Connection) -> None:
    conn.execute(text("DROP INDEX ix_runs_finished"))
    conn.execute(text("UPDATE schema_version SET version = 4"))


async def test_a_version_4_database_gets_the_index_of_ended_runs(database_url: str) -> None:
    assert await upgraded_from(database_url, make_version_4) == 4
    assert "ix_runs_finished" in await indexes(database_url)


@pytest.mark.parametrize("by_owner", [False, True])
async def test_runs_ended_lately_are_counted_from_an_index_not_a_scan_of_every_run(
    sqlite_url: str, by_owner: bool
) -> None:
    stats = str(ended_since(True, by_owner)).replace(":since", "?").replace(":owner", "?")
    binds = ("2026-01-01 00:00:00.000000", "local")[: 1 + by_owner]
    details = await query_plan(sqlite_url, stats, binds)
    assert "ix_runs_finished" in details and "SCAN runs" not in details


def make_version_5(conn: Connection) -> None:
    """The runs table and indexes of version 5, and skipped runs written by it: one per fire time
    skipped by the overlap policy, one per misfire naming its count in the message."""
    conn.execute(text("DROP INDEX ix_runs_ready"))
    conn.execute(text("DROP INDEX ix_runs_task_status"))
    conn.execute(text("CREATE INDEX ix_runs_ready ON runs (status, priority DESC, scheduled_for, id)"))
    conn.execute(text("ALTER TABLE runs DROP COLUMN skipped_fires"))
    conn.execute(text("ALTER TABLE runs DROP COLUMN last_scheduled_for"))
    conn.execute(text("UPDATE schema_version SET version = 5"))
    insert_old_task(conn)
    at = datetime(2026, 1, 1, 9, tzinfo=UTC).replace(tzinfo=None)
    runs = (
        ("run_overlap", "2026-01-01T09:00:00.000000Z", "overlap", "the previous run was still active"),
        (
            "run_missed",
            "missed:2026-01-01T09:01:00.000000Z",
            "misfire",
            "missed 7 fire times between 2026-01-01T09:01:00Z and 2026-01-01T09:08:30Z while no server",
        ),
    )
    for run_id, key, kind, message in runs:
        error = json.dumps({"step_id": None, "type": kind, "message": message})
        conn.execute(
            text(
                "INSERT INTO runs (id, task_id, owner, task_title, trigger, status, fire_key, scheduled_for,"
                ' not_before, queued_at, finished_at, attempt, priority, "exclusive", params, steps_total,'
                " steps_completed, error, cancel_requested) VALUES (:id, 'task_old', 'local', 'kept',"
                " 'schedule', 'skipped', :key, :at, :at, :at, :at, 1, 3, true, '{}', 1, 0, :error, false)"
            ),
            {"id": run_id, "key": key, "at": at, "error": error},
        )


async def test_a_version_5_database_gets_the_skip_fields_and_the_fair_claim_indexes(
    database_url: str,
) -> None:
    assert await upgraded_from(database_url, make_version_5) == 5
    assert {"ix_runs_ready", "ix_runs_task_status"} <= await indexes(database_url)
    store = await SqlStore.open(database_url)
    overlap, missed = await store.get_run("run_overlap"), await store.get_run("run_missed")
    ready = await store.database.read(lambda conn: _index_columns(conn, "ix_runs_ready"))
    await store.close()
    at = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert overlap is not None and (overlap.skipped_fires, overlap.last_scheduled_for) == (1, at)
    assert missed is not None and missed.skipped_fires == 7
    assert missed.last_scheduled_for == datetime(2026, 1, 1, 9, 8, 30, tzinfo=UTC)
    assert ready[:2] == ["status", "owner"]


def _index_columns(conn: Connection, name: str) -> list[str]:
    indexes = {index["name"]: index for index in inspect(conn).get_indexes("runs")}
    return [str(column) for column in indexes[name]["column_names"]]

"""Schema upgrades keep users' data: a version-1 database is brought to the current version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.dialects import sqlite

from orchestrator_mcp.store.engine import migrate, open_database
from orchestrator_mcp.store.sql import _NEXT_READY_SQLITE, SqlStore
from orchestrator_mcp.store.tables import SCHEMA_VERSION

pytestmark = pytest.mark.anyio

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


def make_version_1(conn: Connection) -> None:
    """Old indexes, old version number, and a task row written by that version."""
    for name in NEW_INDEXES:
        conn.execute(text(f"DROP INDEX {name}"))
    conn.execute(text("CREATE INDEX ix_runs_task ON runs (task_id, queued_at)"))
    conn.execute(text("UPDATE schema_version SET version = 1"))
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
    database = open_database(database_url)
    await migrate(database)
    await database.write(make_version_1)
    assert await migrate(database) == 1
    version = await database.read(
        lambda conn: conn.execute(text("SELECT version FROM schema_version")).scalar_one()
    )
    assert version == SCHEMA_VERSION
    await database.dispose()
    names = await indexes(database_url)
    assert NEW_INDEXES <= names and "ix_runs_task" not in names
    store = await SqlStore.open(database_url)
    task = await store.get_task("task_old")
    await store.close()
    assert task is not None and task.title == "kept"


async def test_listing_pages_use_an_index_instead_of_sorting(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    query = text("EXPLAIN QUERY PLAN SELECT * FROM runs ORDER BY queued_at DESC, id DESC LIMIT 51")
    details = await store.database.read(lambda conn: " ".join(str(row[-1]) for row in conn.execute(query)))
    await store.close()
    assert "ix_runs_recent" in details and "TEMP B-TREE" not in details


async def test_a_claim_reads_the_queue_in_index_order_instead_of_sorting_it(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    claim = str(store._claimable.compile(dialect=sqlite.dialect()))
    binds = ("queued", "2026-01-01 00:00:00.000000", "running", 4, 0)
    details = await store.database.read(
        lambda conn: " ".join(
            str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + claim, binds)
        )
    )
    await store.close()
    assert "ix_runs_ready" in details and "TEMP B-TREE" not in details


async def test_the_next_ready_time_is_read_from_an_index_not_a_scan_of_the_queue(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    query = "EXPLAIN QUERY PLAN " + str(_NEXT_READY_SQLITE)
    details = await store.database.read(
        lambda conn: " ".join(str(row[-1]) for row in conn.exec_driver_sql(query))
    )
    await store.close()
    assert "ix_runs_queued_not_before" in details and "SCAN runs" not in details


async def test_a_version_3_database_gets_the_queue_indexes(database_url: str) -> None:
    database = open_database(database_url)
    await migrate(database)

    def make_version_3(conn: Connection) -> None:
        conn.execute(text("DROP INDEX ix_runs_ready"))
        conn.execute(text("DROP INDEX ix_runs_queued_not_before"))
        conn.execute(text("CREATE INDEX ix_runs_claim ON runs (status, priority, scheduled_for)"))
        conn.execute(text("UPDATE schema_version SET version = 3"))

    await database.write(make_version_3)
    assert await migrate(database) == 3
    await database.dispose()
    names = await indexes(database_url)
    assert {"ix_runs_ready", "ix_runs_queued_not_before"} <= names and "ix_runs_claim" not in names

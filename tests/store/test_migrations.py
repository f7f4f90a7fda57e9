"""Schema upgrades keep users' data: a version-1 database is brought to the current version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from orchestrator_mcp.store.engine import create_engine, migrate
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import SCHEMA_VERSION

pytestmark = pytest.mark.anyio

NEW_INDEXES = {"ix_runs_recent", "ix_runs_task_recent", "ix_runs_owner_recent", "ix_tasks_recent"}


async def indexes(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        else:
            rows = await conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"))
        names = {row[0] for row in rows}
    await engine.dispose()
    return names


async def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    async with engine.begin() as conn:  # make it look like version 1: old indexes, old version number
        for name in NEW_INDEXES:
            await conn.execute(text(f"DROP INDEX {name}"))
        await conn.execute(text("CREATE INDEX ix_runs_task ON runs (task_id, queued_at)"))
        await conn.execute(text("UPDATE schema_version SET version = 1"))
        now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
        columns = (
            "id, owner, title, description, status, schedule, pipeline, params, policy, run_count, "
            "success_count, failure_count, consecutive_failures, created_at, updated_at"
        )
        values = (
            "'task_old', 'local', 'kept', '', 'active', :schedule, '[]', '{}', '{}', 0, 0, 0, 0, :now, :now"
        )
        await conn.execute(
            text(f"INSERT INTO tasks ({columns}) VALUES ({values})"),
            {"now": now, "schedule": '{"kind": "manual"}'},
        )
    assert await migrate(engine) == 1
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT version FROM schema_version"))).scalar_one() == SCHEMA_VERSION
    await engine.dispose()
    names = await indexes(database_url)
    assert NEW_INDEXES <= names and "ix_runs_task" not in names
    store = await SqlStore.open(database_url)
    task = await store.get_task("task_old")
    await store.close()
    assert task is not None and task.title == "kept"


async def test_listing_pages_use_an_index_instead_of_sorting(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    async with store.engine.connect() as conn:
        plan = await conn.execute(
            text("EXPLAIN QUERY PLAN SELECT * FROM runs ORDER BY queued_at DESC, id DESC LIMIT 51")
        )
        details = " ".join(str(row[-1]) for row in plan)
    await store.close()
    assert "ix_runs_recent" in details and "TEMP B-TREE" not in details

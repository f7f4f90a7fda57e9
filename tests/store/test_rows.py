"""Table objects built from database rows are the same objects the ordinary constructor builds."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.sql.statements import RUNS
from orchestrator_mcp.store.tables import TaskRow, from_row
from tests.store.test_sql_store import NOW, task_row


async def test_a_row_read_back_equals_the_constructed_object_and_can_be_changed(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    written = task_row("task_1", NOW)
    await store.insert_task(written)
    read = await store.get_task("task_1")
    await store.close()
    assert read is not None and read == written and read.model_dump() == written.model_dump()
    read.status = "paused"
    assert read.status == "paused" and read.model_dump()["status"] == "paused"
    assert read.model_copy(update={"title": "other"}).title == "other"


async def test_every_column_comes_back_with_its_type(sqlite_url: str) -> None:
    store = await SqlStore.open(sqlite_url)
    await store.insert_task(task_row("task_1", NOW))
    rows = await store.database.read(lambda conn: [row._mapping for row in conn.execute(select(RUNS))])
    assert rows == []
    task = await store.get_task("task_1")
    await store.close()
    assert task is not None
    assert task.next_run_at == NOW and task.next_run_at.tzinfo is not None
    assert task.pipeline == [{"id": "n", "uses": "core.noop"}] and task.schedule["kind"] == "interval"


def test_a_partial_mapping_takes_the_ordinary_constructor_and_its_defaults() -> None:
    task = from_row(TaskRow, task_row().model_dump(exclude={"run_count", "description"}))
    assert task.run_count == 0 and task.description == "" and task.id == "task_1"


def test_a_fresh_process_reads_rows_before_constructing_any() -> None:
    """Attribute access works even when no table object was built the ordinary way first."""
    code = (
        "from datetime import UTC, datetime\n"
        "from orchestrator_mcp.store.tables import TokenRow, from_row\n"
        "now = datetime.now(UTC)\n"
        "values = dict(id='tok_1', principal='p', scopes=[], token_hash='h',\n"
        "              created_at=now, revoked_at=None)\n"
        "assert from_row(TokenRow, values).revoked_at is None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

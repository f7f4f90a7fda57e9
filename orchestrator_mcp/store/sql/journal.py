"""A run's record as it executes: step rows, log lines, run fields, its end (with its task's
counters), written together for the runs executing at once (group commit); and their reads."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from orchestrator_mcp.domain.run import RunStatus, TaskStatus
from orchestrator_mcp.domain.task_state import is_counted, pause_threshold, status_after_run
from orchestrator_mcp.store.base import Progress, StepContent
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.engine import Database
from orchestrator_mcp.store.group_commit import GroupCommit
from orchestrator_mcp.store.sql.core import SqlBase
from orchestrator_mcp.store.sql.rows import fetch_all
from orchestrator_mcp.store.sql.statements import (
    LOG_INSERT,
    LOGS,
    RUNS,
    STEPS,
    STEPS_OF_RUN,
    TASKS,
    add_run_to_counters,
    end_active_run,
    if_run_stored,
    run_columns_update,
    run_params,
)
from orchestrator_mcp.store.tables import LogRow, LogValues, StepRow, StepValues


class JournalMixin(SqlBase):
    """A run's writes (progress of concurrent runs committed together) and reads."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._progress = GroupCommit[Progress](self._write_progress)

    async def record_progress(
        self,
        run_id: str,
        steps: Sequence[StepValues],
        logs: Sequence[LogValues],
        run_values: dict[str, Any] | None,
        end: dict[str, Any] | None = None,
    ) -> None:
        """Save step records, log lines and run fields of one run; durable when this returns.

        With `end` (the run's final fields, `status` and `finished_at` among them) the same write
        also ends the run, as `finish_run` does: its last records and its end are one commit.
        Progress of runs executing at the same time is committed together (group commit): one
        transaction and one statement per kind of row for all of them, instead of one each.
        """
        await self._progress.submit(Progress(run_id, steps, logs, run_values, end))

    async def _write_progress(self, batch: Sequence[Progress]) -> None:
        steps = [step for item in batch for step in item.steps]
        logs = [line for item in batch for line in item.logs]
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        # A run's last fields go in its end: one UPDATE of the row, not two.
        ends = [(item.run_id, (item.run_values or {}) | item.end) for item in batch if item.end is not None]
        for item in batch:
            if item.run_values and item.end is None:
                keys = tuple(sorted(item.run_values))
                updates.setdefault(keys, []).append(run_params(item.run_id, item.run_values))

        def work(conn: Connection) -> None:
            self._step_upsert.executemany(conn, steps)
            LOG_INSERT.executemany(conn, logs)
            for keys, rows in updates.items():
                run_columns_update(keys).executemany(conn, rows)
            for run_id, end in ends:
                _end_run(conn, run_id, end, end["finished_at"])

        await self.database.write(work)

    @functools.cached_property
    def _step_upsert(self) -> DirectStatement:
        """Insert a step record of a run still stored, or overwrite it; built once (building it costs
        more than running it)."""
        keys = [column.name for column in STEPS.c]
        upsert = self._insert(STEPS).from_select(keys, if_run_stored(STEPS, keys))
        primary = ("run_id", "seq")
        return DirectStatement(
            upsert.on_conflict_do_update(
                index_elements=list(primary),
                set_={key: upsert.excluded[key] for key in keys if key not in primary},
            )
        )

    async def update_run(self, run_id: str, values: dict[str, Any]) -> None:
        def work(conn: Connection) -> None:
            conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))
            if values.get("cancel_requested"):
                self._notify(conn, "cancel", run_id)

        await self.database.write(work)

    async def finish_run(self, run_id: str, values: dict[str, Any], now: datetime) -> bool:
        """Store a run's final state and fold it into its task's counters, in one transaction.

        Returns False if the run had already ended (e.g. cancelled while queued).
        """
        return await self.database.write(lambda conn: _end_run(conn, run_id, values, now))

    async def append_logs(self, lines: Sequence[LogValues]) -> None:
        if lines:
            await self.database.write(lambda conn: LOG_INSERT.executemany(conn, lines))

    async def list_steps(self, run_id: str) -> list[StepRow]:
        return await self.database.read(
            lambda conn: fetch_all(conn, STEPS_OF_RUN, StepRow, {"run_id": run_id})
        )

    async def read_logs(self, run_id: str) -> list[LogRow]:
        return await self._rows(select(LOGS).where(LOGS.c.run_id == run_id).order_by(LOGS.c.id), LogRow)

    async def read_step_content(self, run_id: str, step_id: str) -> StepContent | None:
        stmt = select(STEPS.c.content, STEPS.c.content_data).where(
            STEPS.c.run_id == run_id, STEPS.c.step_id == step_id
        )

        def work(conn: Connection) -> StepContent | None:
            row = conn.execute(stmt).first()
            return None if row is None else StepContent(row[0] or [], row[1] or [])

        return await self.database.read(work)


def _end_run(conn: Connection, run_id: str, values: dict[str, Any], now: datetime) -> bool:
    """Store a run's final fields and fold it into its task's counters; False if it had already ended."""
    ended = end_active_run(tuple(sorted(values))).first(conn, run_params(run_id, values))
    if ended is None:
        return False
    task_id, started_at = ended
    status = RunStatus(values["status"])
    if is_counted(status):
        _count_run(conn, task_id, started_at or now, status, now)
    return True


def _count_run(
    conn: Connection, task_id: str, last_run_at: datetime, status: RunStatus, now: datetime
) -> None:
    """Add an ended run to its task's counters (in SQL: no read first), then, for a failure, apply
    `status_after_run` (domain.task_state: the task's `pause_after_failures` failures in a row pause
    it) to what that UPDATE returned: a second statement only when the task is paused."""
    failed = status.is_failure
    params = {
        "task_key": task_id,
        "succeeded": int(status is RunStatus.SUCCEEDED),
        "new_last_run_at": last_run_at,
        "new_last_run_status": status.value,
    }
    counted = add_run_to_counters(failed).first(conn, params)
    if counted is None or not failed:
        return
    failures, policy, stored = counted
    current = TaskStatus(stored)
    after = status_after_run(current, failures, pause_threshold(policy))
    if after is not current:
        conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(status=after.value, updated_at=now))

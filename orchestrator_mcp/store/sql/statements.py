"""The tables, and the statements built once (building one costs more than running it).

A `DirectStatement` runs straight on sqlite3's cursor on SQLite (see store.direct); the statements
whose SQL differs between SQLite and PostgreSQL are in `dialect` (or built per store, for its
dialect, on first use).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)

from orchestrator_mcp.domain.queueing import RUN_START_ORDER
from orchestrator_mcp.domain.run import ACTIVE_RUN_STATUSES, RunStatus, TaskStatus
from orchestrator_mcp.store.direct import DirectStatement
from orchestrator_mcp.store.tables import IdempotencyRow, InstanceRow, LogRow, RunRow, StepRow, TaskRow

TASKS: Table = TaskRow.__table__  # type: ignore[attr-defined]
RUNS: Table = RunRow.__table__  # type: ignore[attr-defined]
STEPS: Table = StepRow.__table__  # type: ignore[attr-defined]
LOGS: Table = LogRow.__table__  # type: ignore[attr-defined]
IDEMPOTENCY: Table = IdempotencyRow.__table__  # type: ignore[attr-defined]
INSTANCES: Table = InstanceRow.__table__  # type: ignore[attr-defined]

ACTIVE = [status.value for status in ACTIVE_RUN_STATUSES]
IN_CHUNK = 500
"""Ids per `IN (...)` list (well under SQLite's bound-parameter limit)."""
START_ORDER: list[ColumnElement[Any]] = [
    RUNS.c[name].desc() if descending else RUNS.c[name] for name, descending in RUN_START_ORDER
]
"""`RUN_START_ORDER` (domain.queueing) as an ORDER BY of runs: the claim's."""

START_RUNS = (
    update(RUNS)
    .where(RUNS.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=RunStatus.RUNNING.value, started_at=bindparam("now"), instance_id=bindparam("instance"))
    .returning(*RUNS.c)
)
"""Mark claimed runs running on an instance (statements built once: building one costs more than
running it)."""
START_RUN = DirectStatement(
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_key"))
    .values(status=RunStatus.RUNNING.value, started_at=bindparam("now"), instance_id=bindparam("instance"))
    .returning(*RUNS.c)
)
"""`START_RUNS` for one run, run directly on SQLite for claims of up to `ONE_BY_ONE` runs."""
MOVE_TASKS = DirectStatement(
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_key"))
    .values(
        next_run_at=bindparam("new_next"), status=bindparam("new_status"), updated_at=bindparam("moved_at")
    )
)
"""Move fired tasks to their next fire time (and status), all of a fire in one executemany."""


def if_run_stored(table: Table, keys: Sequence[str]) -> Any:
    """`SELECT :key, ...` of a row of `table`, only if its run (`:run_id`) is stored: the source of an
    insert that drops the records of a run deleted while it ran (its task deleted), looked up in the
    writing statement itself, so a delete comes wholly before or after."""
    run_id = bindparam("run_id", type_=RUNS.c.id.type)
    stored = select(RUNS.c.id).where(RUNS.c.id == run_id).exists()
    return select(
        *(run_id if key == "run_id" else bindparam(key, type_=table.c[key].type) for key in keys)
    ).where(stored)


_LOG_KEYS = [column.name for column in LOGS.c if column.name != "id"]
LOG_INSERT = DirectStatement(insert(LOGS).from_select(_LOG_KEYS, if_run_stored(LOGS, _LOG_KEYS)))
"""Append log lines of runs still stored (their ids come from the database)."""
ACTIVE_COUNTS = (
    select(RUNS.c.task_id, RUNS.c.status, func.count())
    .where(RUNS.c.task_id.in_(bindparam("ids", expanding=True)), RUNS.c.status.in_(ACTIVE))
    .group_by(RUNS.c.task_id, RUNS.c.status)
)
"""Queued and running runs of the tasks of a fire, counted from ix_runs_task_status alone."""
_RUNNING = RUNS.alias("running")
LATEST_SKIP = DirectStatement(
    select(
        RUNS.c.id,
        RUNS.c.scheduled_for,
        RUNS.c.last_scheduled_for,
        RUNS.c.skipped_fires,
        RUNS.c.queued_at,
        RUNS.c.error,
        select(func.max(_RUNNING.c.started_at))
        .where(_RUNNING.c.task_id == bindparam("task"), _RUNNING.c.status == RunStatus.RUNNING.value)
        .scalar_subquery()
        .label("running_since"),
    )
    .where(RUNS.c.task_id == bindparam("task"), RUNS.c.status == RunStatus.SKIPPED.value)
    .order_by(RUNS.c.scheduled_for.desc())
    .limit(1)
)
"""A task's latest skipped record, and when its latest running run started (both from
ix_runs_task_status): what a fire that skips needs to extend the record instead of adding one."""
RUNNING_BY_OWNER = DirectStatement(
    select(RUNS.c.owner, func.count()).where(RUNS.c.status == RunStatus.RUNNING.value).group_by(RUNS.c.owner)
)
"""How many runs each principal has running, on every instance (from ix_runs_ready alone)."""
WAITING_OWNERS = DirectStatement(
    text(
        "WITH RECURSIVE waiting(owner) AS ("
        " SELECT (SELECT owner FROM runs WHERE status = 'queued' ORDER BY owner LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT runs.owner FROM runs WHERE runs.status = 'queued' AND runs.owner > waiting.owner"
        " ORDER BY runs.owner LIMIT 1)"
        " FROM waiting WHERE waiting.owner IS NOT NULL"
        ") SELECT owner FROM waiting WHERE owner IS NOT NULL"
    ).columns(column("owner"))
)
"""The principals with queued runs, one index seek each in ix_runs_ready (status, owner, ...) rather
than a read of the whole queue: a recursive query stepping from one owner to the next."""
TASKS_BY_ID = select(TASKS).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
TASK_BY_ID = DirectStatement(select(TASKS).where(TASKS.c.id == bindparam("id")))
RUN_BY_ID = DirectStatement(select(RUNS).where(RUNS.c.id == bindparam("id")))
QUEUED_AT = DirectStatement(select(RUNS.c.queued_at).where(RUNS.c.id == bindparam("id")))
STEPS_OF_RUN = DirectStatement(
    select(*(column for column in STEPS.c if column.name != "content_data"))
    .where(STEPS.c.run_id == bindparam("run_id"))
    .order_by(STEPS.c.seq)
)
"""A run's step records without their content's binary data (read only when asked for)."""
RUN_INSERT = DirectStatement(insert(RUNS))
NEXT_DUE = select(func.min(TASKS.c.next_run_at)).where(TASKS.c.status == TaskStatus.ACTIVE.value)
NEXT_READY = select(func.min(RUNS.c.not_before)).where(RUNS.c.status == literal_column("'queued'"))
"""The earliest `not_before` of the queue; the literal status matches the partial index
ix_runs_queued_not_before (a bound parameter would not)."""


def run_params(run_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of `set_run_columns` (and `end_active_run`) for one run."""
    return {"run_key": run_id, **{f"new_{key}": value for key, value in values.items()}}


@functools.cache
def set_run_columns(keys: tuple[str, ...]) -> Any:
    """UPDATE a run's columns `keys` (bound as `new_<key>`, the run as `run_key`); built once per set
    of keys (building it costs more than running it)."""
    return (
        update(RUNS)
        .where(RUNS.c.id == bindparam("run_key"))
        .values({key: bindparam(f"new_{key}") for key in keys})
    )


@functools.cache
def run_columns_update(keys: tuple[str, ...]) -> DirectStatement:
    """`set_run_columns` for a run's progress writes (see store.direct)."""
    return DirectStatement(set_run_columns(keys))


@functools.cache
def end_active_run(keys: tuple[str, ...]) -> DirectStatement:
    """`set_run_columns` of a run still active, returning what its task's counters need."""
    # The statuses as SQL literals: a list parameter would make the markers per execution.
    active = set_run_columns(keys).where(
        RUNS.c.status.in_([literal_column(f"'{status}'") for status in ACTIVE])
    )
    return DirectStatement(active.returning(RUNS.c.task_id, RUNS.c.started_at))


@functools.cache
def add_run_to_counters(failed: bool) -> DirectStatement:
    """The counters UPDATE of `_count_run` (built once: building it cost more than running it)."""
    counters = (
        update(TASKS)
        .where(TASKS.c.id == bindparam("task_key"))
        .values(
            run_count=TASKS.c.run_count + 1,
            success_count=TASKS.c.success_count + bindparam("succeeded"),
            failure_count=TASKS.c.failure_count + int(failed),
            consecutive_failures=TASKS.c.consecutive_failures + 1 if failed else 0,
            last_run_at=bindparam("new_last_run_at"),
            last_run_status=bindparam("new_last_run_status"),
        )
        # What domain.task_state.status_after_run needs (the stored policy, for its pause threshold).
        .returning(TASKS.c.consecutive_failures, TASKS.c.policy, TASKS.c.status)
    )
    return DirectStatement(counters)

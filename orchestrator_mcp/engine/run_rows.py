"""A task's run as the store inserts it: the row every trigger (a fire, `run_now`, a retry) queues.

Pure (no I/O; a new id is the only thing it makes). It stays beside the engine rather than in
`domain/` because it builds the store's rows (`RunRow`, `TaskRow`), which the domain does not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunStatus, Trigger
from orchestrator_mcp.ids import new_id
from orchestrator_mcp.store.tables import RunRow, TaskRow


def new_run(
    task: TaskRow,
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    policy: Policy,
    params: dict[str, Any],
) -> RunRow:
    """A queued run of `task`."""
    return RunRow(**_queued(task, trigger, scheduled_for, now, policy, params))


def run_values(
    task: TaskRow,
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    policy: Policy,
    params: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """A queued run of `task` as the store inserts it (every column), with `fields` set over it.

    Built without a table model (validating one costs ~80 us, constructing and dumping one ~30 us,
    most of firing a burst of due tasks): the values come from a stored task and the engine, already
    of the column types, and the columns they leave out take the model's defaults.
    """
    return _RUN_DEFAULTS | _queued(task, trigger, scheduled_for, now, policy, params) | fields


_RUN_DEFAULTS: dict[str, Any] = {
    name: info.default for name, info in RunRow.model_fields.items() if not info.is_required()
}
"""Every optional run column with its default (all immutable: None, numbers, booleans): the store
inserts fired runs with executemany, so every row must have every column."""


def _queued(
    task: TaskRow,
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    policy: Policy,
    params: dict[str, Any],
) -> dict[str, Any]:
    run_id = new_id("run")
    return {
        "id": run_id,
        "task_id": task.id,
        "owner": task.owner,
        "task_title": task.title,
        "trigger": trigger.value,
        "status": RunStatus.QUEUED.value,
        "fire_key": run_id,
        "scheduled_for": scheduled_for,
        "not_before": scheduled_for,
        "queued_at": now,
        "priority": policy.priority,
        "exclusive": policy.exclusive,
        "params": params,
        "steps_total": len(task.pipeline),
    }

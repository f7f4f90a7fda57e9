"""How a task's status follows from what its fires and runs did. Pure: the store applies these in
the transaction that records the fire or the run's end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator_mcp.domain.firing import FirePlan
from orchestrator_mcp.domain.run import RunStatus, TaskStatus

PAUSE_AFTER_FAILURES = "pause_after_failures"
"""The policy field (see domain.policy.Policy) giving how many failed runs in a row pause a task."""


def status_after_fire(status: TaskStatus, plan: FirePlan) -> TaskStatus:
    """A task's status once a fire of it is stored: `completed` when no fire time is left, `paused`
    when its stored definition could not be planned (broken), otherwise unchanged."""
    if plan.completed:
        return TaskStatus.COMPLETED
    if plan.broken is not None:
        return TaskStatus.PAUSED
    return status


def is_counted(status: RunStatus) -> bool:
    """Whether an ended run counts in its task's counters: a skipped run (overlap, misfire) never ran."""
    return status is not RunStatus.SKIPPED


def pause_threshold(policy: Mapping[str, Any] | None) -> int | None:
    """`pause_after_failures` of a task's stored policy (as stored: read without parsing the whole
    policy on the hot path of a run's end), or None: never paused for failures."""
    return (policy or {}).get(PAUSE_AFTER_FAILURES)


def status_after_run(status: TaskStatus, consecutive_failures: int, pause_after: int | None) -> TaskStatus:
    """A task's status once an ended run is counted: an active task whose failed runs in a row
    (`consecutive_failures`, this one included) reach `pause_after` is paused; otherwise unchanged."""
    if pause_after and consecutive_failures >= pause_after and status is TaskStatus.ACTIVE:
        return TaskStatus.PAUSED
    return status

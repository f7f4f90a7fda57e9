"""What one due fire time of a task turns into: runs to create, skipped records, the next fire time.

Pure: the scheduler calls `plan_fire` inside the transaction that claims the fire time and stores
exactly what it returns, so every process that shares a database reaches the same decision.

Late or missed? A fire time claimed within `LATE_TOLERANCE` of its time is simply late (a busy
loop); an older one was missed (no server ran, or every one was saturated) and the misfire
policy decides, over every fire time missed up to now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator_mcp.domain.policy import RUN_ALL_CAP, MisfirePolicy, OverlapPolicy, Policy
from orchestrator_mcp.domain.run import ErrorType, RunError, RunStatus
from orchestrator_mcp.domain.schedule import (
    Schedule,
    count_fire_times_between,
    fire_times_between,
    next_fire_time,
)

LATE_TOLERANCE = timedelta(seconds=5)
MAX_SCAN = 1_000_000


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run row to insert for a fire time."""

    scheduled_for: datetime
    status: RunStatus
    fire_key: str
    skipped: RunError | None = None
    """Why the fire time is not run (a `skipped` run's error)."""


@dataclass(frozen=True, slots=True)
class ActiveRuns:
    """How many runs of the task are queued and running when the fire time is claimed."""

    queued: int = 0
    running: int = 0

    @property
    def any(self) -> bool:
        return self.queued + self.running > 0


@dataclass(slots=True)
class FirePlan:
    """Everything one claim of a due fire time decides."""

    runs: list[PlannedRun] = field(default_factory=list)
    next_run_at: datetime | None = None
    cancel_active: bool = False
    broken: str | None = None
    """Set when the task's stored definition could not be planned: the task is paused."""
    policy: Policy | None = None
    """The policy the plan was made under (unset if broken): its runs' rows are made with it, so a
    task's stored policy is parsed once per fire."""

    @property
    def completed(self) -> bool:
        """No fire time is left: the task becomes `completed`."""
        return self.next_run_at is None and self.broken is None


def fire_key(moment: datetime) -> str:
    """The unique key of a scheduled fire time (with the task id, unique in the runs table)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plan_fire(
    schedule: Schedule, anchor: datetime, policy: Policy, due: datetime, now: datetime, active: ActiveRuns
) -> FirePlan:
    """Decide what the due fire time `due` (<= now) of a task yields."""
    if now - due <= LATE_TOLERANCE:
        plan = FirePlan(next_run_at=next_fire_time(schedule, due, anchor), policy=policy)
        plan.runs.append(_overlap(policy.overlap, due, active, plan))
        return plan
    return _misfire(schedule, anchor, policy, due, now, active)


def _overlap(overlap: OverlapPolicy, moment: datetime, active: ActiveRuns, plan: FirePlan) -> PlannedRun:
    key = fire_key(moment)
    if not active.any or overlap in (OverlapPolicy.ALLOW, OverlapPolicy.BUFFER_ALL):
        return PlannedRun(moment, RunStatus.QUEUED, key)
    if overlap is OverlapPolicy.CANCEL_OTHER:
        plan.cancel_active = True
        return PlannedRun(moment, RunStatus.QUEUED, key)
    if overlap is OverlapPolicy.BUFFER_ONE and active.queued == 0:
        return PlannedRun(moment, RunStatus.QUEUED, key)
    reason = (
        "a run of this task is already waiting (overlap policy buffer_one)"
        if overlap is OverlapPolicy.BUFFER_ONE
        else "the previous run of this task was still active (overlap policy skip)"
    )
    return PlannedRun(moment, RunStatus.SKIPPED, key, RunError(ErrorType.OVERLAP, reason))


def _misfire(
    schedule: Schedule, anchor: datetime, policy: Policy, due: datetime, now: datetime, active: ActiveRuns
) -> FirePlan:
    plan = FirePlan(next_run_at=next_fire_time(schedule, now, anchor), policy=policy)
    total = 1 + count_fire_times_between(schedule, anchor, due, now)
    grace_start = now - timedelta(seconds=policy.misfire_grace_seconds)
    to_run: list[datetime] = []
    if policy.misfire is not MisfirePolicy.SKIP:
        limit = 1 if policy.misfire is MisfirePolicy.RUN_ONCE else RUN_ALL_CAP
        to_run = _latest_within(schedule, anchor, due, now, grace_start, limit)
    if policy.misfire is MisfirePolicy.RUN_ALL:
        # Catch-up runs are queued one after another, whatever the overlap policy.
        plan.runs.extend(PlannedRun(moment, RunStatus.QUEUED, fire_key(moment)) for moment in to_run)
    elif to_run:
        plan.runs.append(_overlap(policy.overlap, to_run[0], active, plan))
    missed = total - len(to_run)
    if missed > 0:
        message = (
            f"missed {missed} fire time{'s' if missed != 1 else ''} between {_text(due)} and {_text(now)} "
            f"while no server was running (misfire policy {policy.misfire.value}, "
            f"grace {policy.misfire_grace_seconds}s)"
        )
        plan.runs.insert(
            0,
            PlannedRun(
                due, RunStatus.SKIPPED, "missed:" + fire_key(due), RunError(ErrorType.MISFIRE, message)
            ),
        )
    return plan


def _latest_within(
    schedule: Schedule, anchor: datetime, due: datetime, now: datetime, grace_start: datetime, limit: int
) -> list[datetime]:
    """The latest `limit` fire times in [due, now] that are not older than `grace_start`."""
    moments = [due] if due >= grace_start else []
    after = due if due >= grace_start else grace_start - timedelta(microseconds=1)
    moments += fire_times_between(schedule, anchor, after, now, MAX_SCAN)
    return moments[-limit:]


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

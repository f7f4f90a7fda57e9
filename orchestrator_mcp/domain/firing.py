"""What one due fire time of a task turns into: runs to create, skipped records, the next fire time.

Pure: the scheduler calls `plan_fire` inside the transaction that claims the fire time and stores
exactly what it returns, so every process that shares a database reaches the same decision.

Late or missed? A fire time claimed within `LATE_TOLERANCE` of its time is simply late (a busy
loop); an older one was missed (no server ran, or every one was saturated) and the misfire
policy decides, over every fire time missed up to now.

Fire times that do not run are recorded as `skipped` runs, each standing for a stretch of them (a
`Skip`): the missed times of one misfire, or consecutive fires skipped by the overlap policy, which
`extend_skip` folds into the task's open record instead of a row per fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator_mcp.domain.policy import RUN_ALL_CAP, MisfirePolicy, OverlapPolicy, Policy
from orchestrator_mcp.domain.run import ErrorType, RunError, RunStatus
from orchestrator_mcp.domain.schedule import (
    Schedule,
    count_fire_times_between,
    fire_times_between,
    next_fire_time,
)

LATE_TOLERANCE = timedelta(seconds=5)
RESOLUTION = timedelta(microseconds=1)
MAX_SCAN = 1_000_000
SKIP_STRETCH = timedelta(minutes=1)
"""A skipped record stands for fire times within this span of its first one: a longer stretch of
skipped fires starts a new record each minute, so a long stall shows in the run list as it goes on
(SPEC §11: at most about one record per executed run, plus one per task-minute in which none ran)."""
MISSED_PREFIX = "missed:"
"""Starts the fire key of a misfire record (the key of its first missed time follows)."""


@dataclass(frozen=True, slots=True)
class Skip:
    """Fire times a `skipped` run stands for (`fires` of them, `first` to `last`), and why they did
    not run: `type` is `overlap` or `misfire`, `reason` the why, without the times."""

    type: ErrorType
    reason: str
    first: datetime
    last: datetime
    fires: int = 1

    @property
    def message(self) -> str:
        """The skipped run's error message: how many fire times, their span, and why."""
        span = (
            f"1 fire time at {_text(self.first)}"
            if self.fires == 1
            else f"{self.fires} fire times from {_text(self.first)} to {_text(self.last)}"
        )
        if self.type is ErrorType.MISFIRE:
            return f"missed {span} {self.reason}"
        return f"skipped {span}: {self.reason}"

    @property
    def error(self) -> RunError:
        return RunError(self.type, self.message)

    def columns(self) -> dict[str, Any]:
        """The skipped run's columns that say which fire times it stands for, and why."""
        return {
            "skipped_fires": self.fires,
            "last_scheduled_for": self.last,
            "error": self.error.as_json(),
        }


@dataclass(frozen=True, slots=True)
class OpenSkip:
    """A task's latest `skipped` run, as a fire reads it to extend it (see `extend_skip`)."""

    run_id: str
    skip: Skip
    recorded_at: datetime
    """When it was made: when its first fire time was skipped (its `queued_at`)."""


def extend_skip(
    latest: OpenSkip | None, skip: Skip, last_start: datetime | None, follows: datetime | None
) -> Skip | None:
    """`latest` (the task's latest skipped record) extended by the newly skipped fire times `skip`,
    when they are one stretch; None when `skip` starts a record of its own.

    One stretch: both are overlap skips; `skip` begins at `follows`, the schedule's next fire time
    after the record's last (no fire time in between yielded a run or was missed); no run of the task
    started since the record was made (`last_start`: the latest `started_at` of the task's runs,
    running or ended); and the new times are within `SKIP_STRETCH` of the record's first.
    """
    if latest is None or skip.type is not ErrorType.OVERLAP or latest.skip.type is not ErrorType.OVERLAP:
        return None
    if skip.first != follows or (last_start is not None and last_start >= latest.recorded_at):
        return None
    held = latest.skip
    if skip.last - held.first >= SKIP_STRETCH:
        return None
    return Skip(skip.type, skip.reason, held.first, skip.last, held.fires + skip.fires)


def may_skip(policy: Mapping[str, Any]) -> bool:
    """Whether a task's stored policy (read as stored, unparsed) may skip a fire for overlap: the
    fire then reads the task's latest skipped record for `ActiveRuns.latest_skip`."""
    overlap = policy.get("overlap", OverlapPolicy.SKIP.value)
    return overlap in (OverlapPolicy.SKIP.value, OverlapPolicy.BUFFER_ONE.value)


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run row to insert for a fire time."""

    scheduled_for: datetime
    status: RunStatus
    fire_key: str
    skipped: Skip | None = None
    """The fire times a `skipped` run stands for, and why they are not run."""
    extends: str | None = None
    """The id of the skipped run this one extends (`skipped` is then the whole extended stretch):
    that run is updated, nothing is inserted."""


@dataclass(frozen=True, slots=True)
class ActiveRuns:
    """What the fire reads of a task's runs when it claims a fire time: how many are queued and
    running, and, when a run is active and the task may skip (`may_skip`), its latest skipped record
    and when a run of it last started (to extend the record: `extend_skip`)."""

    queued: int = 0
    running: int = 0
    latest_skip: OpenSkip | None = None
    last_start: datetime | None = None

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
        plan.runs.append(_overlap(schedule, anchor, policy.overlap, due, active, plan))
        return plan
    return _misfire(schedule, anchor, policy, due, now, active)


def _overlap(
    schedule: Schedule,
    anchor: datetime,
    overlap: OverlapPolicy,
    moment: datetime,
    active: ActiveRuns,
    plan: FirePlan,
) -> PlannedRun:
    key = fire_key(moment)
    if not active.any or overlap in (OverlapPolicy.ALLOW, OverlapPolicy.BUFFER_ALL):
        return PlannedRun(moment, RunStatus.QUEUED, key)
    if overlap is OverlapPolicy.CANCEL_OTHER:
        plan.cancel_active = True
        return PlannedRun(moment, RunStatus.QUEUED, key)
    if overlap is OverlapPolicy.BUFFER_ONE and active.queued == 0:
        return PlannedRun(moment, RunStatus.QUEUED, key)
    reason = (
        "a run of this task was already waiting (overlap policy buffer_one)"
        if overlap is OverlapPolicy.BUFFER_ONE
        else "a run of this task was still active (overlap policy skip)"
    )
    skip = Skip(ErrorType.OVERLAP, reason, moment, moment)
    latest = active.latest_skip
    if latest is not None:
        follows = next_fire_time(schedule, latest.skip.last, anchor)
        extended = extend_skip(latest, skip, active.last_start, follows)
        if extended is not None:
            return PlannedRun(moment, RunStatus.SKIPPED, key, extended, extends=latest.run_id)
    return PlannedRun(moment, RunStatus.SKIPPED, key, skip)


def _misfire(
    schedule: Schedule, anchor: datetime, policy: Policy, due: datetime, now: datetime, active: ActiveRuns
) -> FirePlan:
    plan = FirePlan(next_run_at=next_fire_time(schedule, now, anchor), policy=policy)
    total = 1 + count_fire_times_between(schedule, anchor, due, now)
    grace_start = now - timedelta(seconds=policy.misfire_grace_seconds)
    within: list[datetime] = []  # the fire times in [due, now] not older than the grace
    to_run: list[datetime] = []
    if policy.misfire is not MisfirePolicy.SKIP:
        within = _within_grace(schedule, anchor, due, now, grace_start)
        to_run = within[-(1 if policy.misfire is MisfirePolicy.RUN_ONCE else RUN_ALL_CAP) :]
    if policy.misfire is MisfirePolicy.RUN_ALL:
        # Catch-up runs are queued one after another, whatever the overlap policy.
        plan.runs.extend(PlannedRun(moment, RunStatus.QUEUED, fire_key(moment)) for moment in to_run)
    elif to_run:
        plan.runs.append(_overlap(schedule, anchor, policy.overlap, to_run[0], active, plan))
    missed = total - len(to_run)
    if missed > 0:
        # The missed times are the earliest ones: those before the first that runs.
        not_run = within[: len(within) - len(to_run)]
        bound = to_run[0] if to_run else now + RESOLUTION
        last = not_run[-1] if not_run else _latest_before(schedule, anchor, due, bound)
        reason = (
            f"while no server was running (misfire policy {policy.misfire.value}, "
            f"grace {policy.misfire_grace_seconds}s)"
        )
        skip = Skip(ErrorType.MISFIRE, reason, due, last, missed)
        plan.runs.insert(0, PlannedRun(due, RunStatus.SKIPPED, MISSED_PREFIX + fire_key(due), skip))
    return plan


def _within_grace(
    schedule: Schedule, anchor: datetime, due: datetime, now: datetime, grace_start: datetime
) -> list[datetime]:
    """The fire times in [due, now] that are not older than `grace_start`, ascending."""
    moments = [due] if due >= grace_start else []
    after = due if due >= grace_start else grace_start - RESOLUTION
    return moments + fire_times_between(schedule, anchor, after, now, MAX_SCAN)


def _latest_before(schedule: Schedule, anchor: datetime, due: datetime, bound: datetime) -> datetime:
    """The latest fire time t with `due` <= t < `bound` (`due` is a fire time before `bound`).

    Looked for in a window before `bound`, doubled until it holds one, so only the fire times near
    the end are listed: a task asleep for days has many."""
    until = bound - RESOLUTION
    count = count_fire_times_between(schedule, anchor, due, until)
    if count == 0:
        return due
    window = max((until - due) / (count + 1) * 2, RESOLUTION)
    while until - window > due:
        near = count_fire_times_between(schedule, anchor, until - window, until)
        if near:
            return fire_times_between(schedule, anchor, until - window, until, near)[-1]
        window *= 2
    return fire_times_between(schedule, anchor, due, until, min(count, MAX_SCAN))[-1]


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

"""What a due fire time turns into, for every overlap and misfire policy (pure, instant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_mcp.domain.firing import ActiveRuns, fire_key, plan_fire
from orchestrator_mcp.domain.policy import MisfirePolicy, OverlapPolicy, Policy
from orchestrator_mcp.domain.run import RunStatus
from orchestrator_mcp.domain.schedule import Schedule

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EVERY_MINUTE = Schedule(kind="interval", expr="1m")
IDLE = ActiveRuns()


def test_an_on_time_fire_queues_one_run_and_moves_to_the_next_fire_time() -> None:
    plan = plan_fire(EVERY_MINUTE, T0, Policy(), T0, T0 + timedelta(milliseconds=30), IDLE)
    assert [(run.scheduled_for, run.status) for run in plan.runs] == [(T0, RunStatus.QUEUED)]
    assert plan.runs[0].fire_key == fire_key(T0)
    assert plan.next_run_at == T0 + timedelta(minutes=1)
    assert not plan.completed


def test_a_late_fire_within_tolerance_is_not_a_misfire() -> None:
    plan = plan_fire(
        EVERY_MINUTE, T0, Policy(misfire=MisfirePolicy.SKIP), T0, T0 + timedelta(seconds=4), IDLE
    )
    assert [run.status for run in plan.runs] == [RunStatus.QUEUED]


@pytest.mark.parametrize(
    ("overlap", "active", "expected", "cancels"),
    [
        (OverlapPolicy.SKIP, ActiveRuns(running=1), RunStatus.SKIPPED, False),
        (OverlapPolicy.SKIP, ActiveRuns(), RunStatus.QUEUED, False),
        (OverlapPolicy.BUFFER_ONE, ActiveRuns(running=1), RunStatus.QUEUED, False),
        (OverlapPolicy.BUFFER_ONE, ActiveRuns(running=1, queued=1), RunStatus.SKIPPED, False),
        (OverlapPolicy.BUFFER_ALL, ActiveRuns(running=1, queued=5), RunStatus.QUEUED, False),
        (OverlapPolicy.ALLOW, ActiveRuns(running=3), RunStatus.QUEUED, False),
        (OverlapPolicy.CANCEL_OTHER, ActiveRuns(running=1), RunStatus.QUEUED, True),
    ],
)
def test_overlap_policy_decides_a_fire_while_a_run_is_active(
    overlap: OverlapPolicy, active: ActiveRuns, expected: RunStatus, cancels: bool
) -> None:
    plan = plan_fire(EVERY_MINUTE, T0, Policy(overlap=overlap), T0, T0, active)
    assert [run.status for run in plan.runs] == [expected]
    assert plan.cancel_active is cancels
    if expected is RunStatus.SKIPPED:
        assert plan.runs[0].skipped and overlap.value in plan.runs[0].skipped.message


def test_run_once_runs_the_latest_missed_time_and_records_the_rest() -> None:
    now = T0 + timedelta(minutes=10, seconds=30)
    plan = plan_fire(EVERY_MINUTE, T0, Policy(misfire=MisfirePolicy.RUN_ONCE), T0, now, IDLE)
    skipped, run = plan.runs
    assert run.status is RunStatus.QUEUED and run.scheduled_for == T0 + timedelta(minutes=10)
    assert (
        skipped.status is RunStatus.SKIPPED
        and skipped.skipped is not None
        and skipped.skipped.type == "misfire"
    )
    assert skipped.skipped is not None and "missed 10 fire times" in skipped.skipped.message
    assert plan.next_run_at == T0 + timedelta(minutes=11)


def test_run_all_queues_one_run_per_missed_time_up_to_the_cap() -> None:
    now = T0 + timedelta(minutes=4, seconds=30)
    plan = plan_fire(EVERY_MINUTE, T0, Policy(misfire=MisfirePolicy.RUN_ALL), T0, now, ActiveRuns(running=1))
    assert [run.scheduled_for for run in plan.runs] == [T0 + timedelta(minutes=m) for m in range(5)]
    assert all(run.status is RunStatus.QUEUED for run in plan.runs)
    many = plan_fire(
        EVERY_MINUTE, T0, Policy(misfire=MisfirePolicy.RUN_ALL), T0, T0 + timedelta(hours=3), IDLE
    )
    queued = [run for run in many.runs if run.status is RunStatus.QUEUED]
    assert len(queued) == 100
    assert queued[-1].scheduled_for == T0 + timedelta(hours=3)
    assert many.runs[0].skipped is not None and "missed 81 fire times" in many.runs[0].skipped.message


def test_skip_runs_none_of_the_missed_times() -> None:
    plan = plan_fire(
        EVERY_MINUTE, T0, Policy(misfire=MisfirePolicy.SKIP), T0, T0 + timedelta(minutes=3), IDLE
    )
    assert [run.status for run in plan.runs] == [RunStatus.SKIPPED]
    assert plan.runs[0].skipped is not None and "missed 4 fire times" in plan.runs[0].skipped.message


def test_missed_times_older_than_the_grace_are_not_run() -> None:
    policy = Policy(misfire=MisfirePolicy.RUN_ONCE, misfire_grace_seconds=60)
    daily = Schedule(kind="interval", expr="1d")
    plan = plan_fire(daily, T0, policy, T0, T0 + timedelta(hours=2), IDLE)
    assert [run.status for run in plan.runs] == [RunStatus.SKIPPED]
    overnight = plan_fire(daily, T0, Policy(), T0, T0 + timedelta(hours=9), IDLE)  # default grace: one day
    assert [run.status for run in overnight.runs] == [RunStatus.QUEUED]


def test_a_once_schedule_completes_after_its_fire() -> None:
    once = Schedule(kind="once", expr="2026-03-02T09:00:00Z")
    plan = plan_fire(once, T0, Policy(), T0, T0, IDLE)
    assert plan.completed and [run.status for run in plan.runs] == [RunStatus.QUEUED]

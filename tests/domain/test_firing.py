"""What a due fire time turns into, for every overlap and misfire policy (pure, instant)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_mcp.domain.firing import (
    SKIP_STRETCH,
    ActiveRuns,
    OpenSkip,
    Skip,
    extend_skip,
    fire_key,
    may_skip,
    plan_fire,
)
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


def test_a_misfire_record_names_the_first_and_last_missed_times_and_how_many() -> None:
    now = T0 + timedelta(minutes=10, seconds=30)
    [skipped, run] = plan_fire(EVERY_MINUTE, T0, Policy(misfire=MisfirePolicy.RUN_ONCE), T0, now, IDLE).runs
    assert skipped.skipped is not None and run.scheduled_for == T0 + timedelta(minutes=10)
    assert (skipped.skipped.fires, skipped.skipped.first, skipped.skipped.last) == (
        10,
        T0,
        T0 + timedelta(minutes=9),
    )
    assert skipped.skipped.message == (
        "missed 10 fire times from 2026-03-02T09:00:00Z to 2026-03-02T09:09:00Z while no server was "
        "running (misfire policy run_once, grace 86400s)"
    )
    assert skipped.skipped.columns()["last_scheduled_for"] == T0 + timedelta(minutes=9)


@pytest.mark.parametrize(
    ("policy", "now", "fires", "last"),
    [
        # skip: every time up to now, the last being the latest fire time before now
        (Policy(misfire=MisfirePolicy.SKIP), T0 + timedelta(minutes=3, seconds=30), 4, timedelta(minutes=3)),
        # every missed time older than the grace: none is run, the last missed is the latest of them
        (
            Policy(misfire=MisfirePolicy.RUN_ONCE, misfire_grace_seconds=10),
            T0 + timedelta(minutes=5, seconds=30),
            6,
            timedelta(minutes=5),
        ),
        # some older than the grace, the rest run: the last missed is the one before the first run
        (
            Policy(misfire=MisfirePolicy.RUN_ALL, misfire_grace_seconds=150),
            T0 + timedelta(minutes=5, seconds=30),
            3,
            timedelta(minutes=2),
        ),
        # more within the grace than run_all runs: the missed are those before the first of the 100
        (Policy(misfire=MisfirePolicy.RUN_ALL), T0 + timedelta(hours=3), 81, timedelta(minutes=80)),
    ],
)
def test_the_last_missed_time_is_the_latest_fire_time_not_run(
    policy: Policy, now: datetime, fires: int, last: timedelta
) -> None:
    record = plan_fire(EVERY_MINUTE, T0, policy, T0, now, IDLE).runs[0]
    assert record.status is RunStatus.SKIPPED and record.skipped is not None
    assert (record.skipped.fires, record.skipped.first, record.skipped.last) == (fires, T0, T0 + last)


def test_the_last_missed_time_of_an_irregular_schedule_is_found_far_before_now() -> None:
    """A weekday 9:00 cron missed over a long weekend: the last missed time is Friday's."""
    weekdays = Schedule(kind="cron", expr="0 9 * * 1-5")
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    now = datetime(2026, 3, 8, 20, 0, tzinfo=UTC)  # Sunday evening
    record = plan_fire(weekdays, monday, Policy(misfire=MisfirePolicy.SKIP), monday, now, IDLE).runs[0]
    assert record.skipped is not None
    assert (record.skipped.fires, record.skipped.last) == (5, datetime(2026, 3, 6, 9, 0, tzinfo=UTC))


def overlap_skip(at: datetime) -> Skip:
    [planned] = plan_fire(EVERY_SECOND, T0, Policy(), at, at, ActiveRuns(running=1)).runs
    assert planned.skipped is not None
    return planned.skipped


EVERY_SECOND = Schedule(kind="interval", expr="1s")


def test_an_overlap_skip_stands_for_one_fire_time_and_says_so() -> None:
    skip = overlap_skip(T0)
    assert (skip.type, skip.fires, skip.first, skip.last) == ("overlap", 1, T0, T0)
    assert skip.message == (
        "skipped 1 fire time at 2026-03-02T09:00:00Z: "
        "a run of this task was still active (overlap policy skip)"
    )


def test_consecutive_overlap_skips_extend_the_open_record() -> None:
    """The planner, given the task's latest skipped record, plans its extension at each fire."""
    busy = ActiveRuns(running=1, last_start=T0 - timedelta(seconds=5))
    [first] = plan_fire(EVERY_SECOND, T0, Policy(), T0, T0, busy).runs
    assert first.skipped is not None and first.extends is None  # no record yet: a new one
    record = OpenSkip("run_s", first.skipped, recorded_at=T0)
    for second in range(1, 12):
        moment = T0 + timedelta(seconds=second)
        [planned] = plan_fire(
            EVERY_SECOND, T0, Policy(), moment, moment, replace(busy, latest_skip=record)
        ).runs
        assert planned.status is RunStatus.SKIPPED and planned.extends == "run_s"
        assert planned.skipped is not None
        record = OpenSkip("run_s", planned.skipped, recorded_at=T0)
    held = record.skip
    assert (held.fires, held.first, held.last) == (12, T0, T0 + timedelta(seconds=11))
    assert held.message == (
        "skipped 12 fire times from 2026-03-02T09:00:00Z to 2026-03-02T09:00:11Z: "
        "a run of this task was still active (overlap policy skip)"
    )
    assert held.columns() == {
        "skipped_fires": 12,
        "last_scheduled_for": T0 + timedelta(seconds=11),
        "error": {"step_id": None, "type": "overlap", "message": held.message},
    }


def test_a_skip_starts_a_new_record_after_a_minute_a_gap_a_started_run_or_a_misfire_record() -> None:
    open_at_t0 = OpenSkip("run_s", overlap_skip(T0), recorded_at=T0)
    one, two = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    assert extend_skip(None, overlap_skip(one), None, one) is None  # nothing to extend
    assert extend_skip(open_at_t0, overlap_skip(one), None, one) is not None  # no run ever started
    long = OpenSkip("run_s", replace(overlap_skip(T0), last=T0 + timedelta(seconds=58), fires=59), T0)
    at_59, at_60 = T0 + timedelta(seconds=59), T0 + SKIP_STRETCH
    assert extend_skip(long, overlap_skip(at_59), None, at_59) is not None
    assert (
        extend_skip(replace(long, skip=replace(long.skip, last=at_59)), overlap_skip(at_60), None, at_60)
        is None
    )
    # The fire time after the record's last (1 s) yielded a run, or was missed: not consecutive.
    assert extend_skip(open_at_t0, overlap_skip(two), None, one) is None
    assert extend_skip(open_at_t0, overlap_skip(one), T0, one) is None  # a run started as it was made
    assert extend_skip(open_at_t0, overlap_skip(one), T0 + timedelta(milliseconds=500), one) is None
    missed = plan_fire(
        EVERY_SECOND, T0, Policy(misfire=MisfirePolicy.SKIP), T0, T0 + timedelta(seconds=9), IDLE
    )
    assert missed.runs[0].skipped is not None
    assert extend_skip(OpenSkip("run_m", missed.runs[0].skipped, T0), overlap_skip(one), None, one) is None


def test_a_planned_skip_after_a_fire_that_queued_a_run_starts_a_new_record() -> None:
    """At 1 s nothing was active and a run was queued (it never started); at 2 s the fire is skipped."""
    record = OpenSkip("run_s", overlap_skip(T0), recorded_at=T0)
    two = T0 + timedelta(seconds=2)
    [planned] = plan_fire(EVERY_SECOND, T0, Policy(), two, two, ActiveRuns(queued=1, latest_skip=record)).runs
    assert planned.status is RunStatus.SKIPPED and planned.extends is None
    assert planned.skipped is not None and (planned.skipped.fires, planned.skipped.first) == (1, two)


def test_only_tasks_that_may_skip_read_their_latest_record() -> None:
    assert may_skip({}) and may_skip({"overlap": "skip"}) and may_skip({"overlap": "buffer_one"})
    assert not any(may_skip({"overlap": kind}) for kind in ("allow", "buffer_all", "cancel_other"))

"""A task's status after a fire or a counted run (pure, instant)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator_mcp.domain.firing import FirePlan
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunStatus, TaskStatus
from orchestrator_mcp.domain.task_state import (
    PAUSE_AFTER_FAILURES,
    is_counted,
    pause_threshold,
    status_after_fire,
    status_after_run,
)

LATER = datetime(2026, 3, 2, 9, 1, tzinfo=UTC)


def test_a_fire_with_a_next_fire_time_leaves_the_status_as_it_was() -> None:
    assert status_after_fire(TaskStatus.ACTIVE, FirePlan(next_run_at=LATER)) is TaskStatus.ACTIVE


def test_a_fire_with_no_fire_time_left_completes_the_task() -> None:
    assert status_after_fire(TaskStatus.ACTIVE, FirePlan(next_run_at=None)) is TaskStatus.COMPLETED


def test_a_fire_of_a_definition_that_cannot_be_planned_pauses_the_task() -> None:
    assert status_after_fire(TaskStatus.ACTIVE, FirePlan(broken="bad schedule")) is TaskStatus.PAUSED


@pytest.mark.parametrize(
    ("status", "failures", "threshold", "expected"),
    [
        (TaskStatus.ACTIVE, 3, 3, TaskStatus.PAUSED),
        (TaskStatus.ACTIVE, 4, 3, TaskStatus.PAUSED),
        (TaskStatus.ACTIVE, 2, 3, TaskStatus.ACTIVE),
        (TaskStatus.ACTIVE, 50, None, TaskStatus.ACTIVE),
        (TaskStatus.COMPLETED, 3, 3, TaskStatus.COMPLETED),
        (TaskStatus.CANCELLED, 3, 3, TaskStatus.CANCELLED),
    ],
)
def test_failures_in_a_row_pause_only_an_active_task_and_only_at_its_threshold(
    status: TaskStatus, failures: int, threshold: int | None, expected: TaskStatus
) -> None:
    assert status_after_run(status, failures, threshold) is expected


def test_the_threshold_is_read_from_the_stored_policy_under_the_policy_field_name() -> None:
    assert PAUSE_AFTER_FAILURES in Policy.model_fields
    stored = Policy(pause_after_failures=2).model_dump(mode="json")
    assert pause_threshold(stored) == 2
    assert pause_threshold(Policy().model_dump(mode="json")) is None
    assert pause_threshold(None) is None


def test_a_skipped_run_is_not_counted_and_every_other_end_is() -> None:
    assert [status for status in RunStatus if status.is_final and not is_counted(status)] == [
        RunStatus.SKIPPED
    ]

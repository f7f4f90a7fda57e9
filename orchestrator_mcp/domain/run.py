"""Run and step states, which of them are final, and the record of how a run ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def is_failure(self) -> bool:
        """Counts towards `failure_count` and `pause_after_failures`."""
        return self in (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.INTERRUPTED)


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class StepStatus(StrEnum):
    """Where a step is in its run."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class Trigger(StrEnum):
    """What started a run."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"


class TaskStatus(StrEnum):
    """Where a task is in its life."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ErrorType(StrEnum):
    """Why a run (or one of its steps) did not succeed: the `type` of a run's `error`."""

    TOOL_ERROR = "tool_error"
    """The tool answered with `isError` (or a provider refused a request)."""
    TIMEOUT = "timeout"
    """A step exceeded its time limit."""
    UNAVAILABLE = "unavailable"
    """The tool's server could not be reached."""
    INVALID_ARGUMENTS = "invalid_arguments"
    TEMPLATE_ERROR = "template_error"
    EXPRESSION_ERROR = "expression_error"
    MISSING_SECRET = "missing_secret"
    PERMISSION_DENIED = "permission_denied"
    """The task's owner lacks a grant the run needs (a secret)."""
    INVALID_PIPELINE = "invalid_pipeline"
    """The stored pipeline no longer parses."""
    OUTPUT_ERROR = "output_error"
    RUN_TIMEOUT = "run_timeout"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """The process running the run stopped before it ended."""
    OVERLAP = "overlap"
    MISFIRE = "misfire"
    INTERNAL = "internal"
    """A defect of the orchestrator's own."""


@dataclass(frozen=True, slots=True)
class RunError:
    """The `error` of a run: which step failed (None for the run as a whole), why, and how."""

    type: ErrorType
    message: str
    step_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored and returned form: `{step_id, type, message}`."""
        return {"step_id": self.step_id, "type": self.type.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended: the one record every layer stores for it.

    `duration_ms`, `steps_completed` and `output` are left as stored when None (a run ended before
    it executed, or by another process than the one that ran it)."""

    status: RunStatus
    finished_at: datetime
    error: RunError | None = None
    duration_ms: int | None = None
    steps_completed: int | None = None
    output: Any = None

    def __post_init__(self) -> None:
        if not self.status.is_final:
            raise ValueError(f"a run cannot end {self.status.value}")

    def columns(self) -> dict[str, Any]:
        """The run's columns this end sets, as the store writes them."""
        values: dict[str, Any] = {
            "status": self.status.value,
            "finished_at": self.finished_at,
            "error": None if self.error is None else self.error.as_json(),
        }
        if self.duration_ms is not None:
            values["duration_ms"] = self.duration_ms
        if self.steps_completed is not None:
            values["steps_completed"] = self.steps_completed
        if self.output is not None:
            values["output"] = self.output
        return values

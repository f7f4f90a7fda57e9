"""A task's run policy (SPEC §4): limits, retries, overlap, misfire, priority."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from orchestrator_mcp.domain.retry import RetryPolicy


class OverlapPolicy(StrEnum):
    """What a fire does while a run of the same task is still active."""

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    CANCEL_OTHER = "cancel_other"
    ALLOW = "allow"


class MisfirePolicy(StrEnum):
    """What happens to fire times missed while no server was running (or all were saturated)."""

    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"
    SKIP = "skip"


RUN_ALL_CAP = 100
"""`run_all` starts at most this many catch-up runs; the rest are recorded as skipped."""


class Policy(BaseModel):
    """How a task's runs are limited, retried and ordered. Every field is optional."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: int = Field(
        300, ge=1, le=86_400, description="Whole-run limit in seconds; exceeded -> run `timed_out`."
    )
    step_timeout_seconds: int = Field(
        60, ge=1, le=3_600, description="Default per-step limit in seconds (a step's own value wins)."
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description='Default step retry, e.g. {"max_attempts": 3, "backoff_seconds": 2}.',
    )
    overlap: OverlapPolicy = Field(
        OverlapPolicy.SKIP,
        description="A fire while a run of this task is active: skip (record a skipped run), buffer_one, "
        "buffer_all, cancel_other (cancel the active run, then start) or allow (run concurrently).",
    )
    misfire: MisfirePolicy = Field(
        MisfirePolicy.RUN_ONCE,
        description="Fire times missed while no server ran: run_once (one run for all), run_all "
        "(one per missed time, at most 100) or skip.",
    )
    misfire_grace_seconds: int = Field(
        86_400, ge=0, le=31_536_000, description="Missed fire times older than this are not run."
    )
    pause_after_failures: int | None = Field(
        None, ge=1, le=1_000, description="Pause the task after this many consecutive failed runs."
    )
    priority: int = Field(
        3, ge=1, le=5, description="1 (low) to 5 (high): order among runs waiting for a free slot."
    )

    @property
    def exclusive(self) -> bool:
        """True when at most one run of the task may execute at a time."""
        return self.overlap is not OverlapPolicy.ALLOW

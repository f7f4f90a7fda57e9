"""What tools return (SPEC §5–§6): response models whose JSON schemas are the tools' output schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC (a naive time is taken as local time, as `timefmt.rfc3339` does)."""
    return moment.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(as_utc), Field(json_schema_extra={"format": "date-time"})]
"""A time, serialised as RFC 3339 UTC with `Z`: held in UTC, so pydantic's own serialiser writes
exactly what `timefmt.rfc3339` would (`2026-11-24T09:00:00Z`, `.123456` when there are
microseconds), without a Python call per field."""


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskView(View):
    id: str
    title: str
    description: str
    owner: str
    status: str = Field(description="active | paused | completed | cancelled")
    schedule: dict[str, Any]
    schedule_description: str
    pipeline: list[dict[str, Any]]
    on_failure: list[dict[str, Any]] | None
    params: dict[str, Any]
    output: str | None
    policy: dict[str, Any]
    next_run_at: Timestamp | None
    last_run_at: Timestamp | None
    last_run_status: str | None
    run_count: int
    success_count: int
    failure_count: int
    created_at: Timestamp
    updated_at: Timestamp


class RunErrorView(View):
    step_id: str | None
    type: str
    message: str


class StepView(View):
    step_id: str
    uses: str
    phase: str = Field(description="main | on_failure")
    status: str = Field(
        description="pending | running | succeeded | failed | skipped | cancelled | timed_out"
    )
    attempts: int
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    arguments: Any
    result: Any = Field(description="The result; over 64 KiB it is truncated and result_uri holds it whole.")
    result_uri: str | None
    error: str | None
    skip_reason: str | None


class RunView(View):
    id: str
    task_id: str
    task_title: str
    trigger: str = Field(description="schedule | manual | retry")
    status: str = Field(
        description="queued | running | succeeded | failed | cancelled | timed_out | skipped | interrupted"
    )
    scheduled_for: Timestamp
    queued_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    attempt: int
    params: dict[str, Any]
    steps_total: int
    steps_completed: int
    error: RunErrorView | None
    output: Any
    log_uri: str
    steps: list[StepView] | None = None


class TaskList(View):
    tasks: list[TaskView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class RunList(View):
    runs: list[RunView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ProblemView(View):
    path: str
    message: str


class ValidationView(View):
    valid: bool
    errors: list[ProblemView]
    next_runs: list[Timestamp]


class PreviewView(View):
    description: str
    next_runs: list[Timestamp]


class DeletedView(View):
    deleted: bool
    task_id: str


class ServerView(View):
    name: str
    transport: str
    available: bool
    error: str | None


class CatalogToolView(View):
    uses: str
    description: str
    input_schema: dict[str, Any]


class CatalogView(View):
    servers: list[ServerView]
    tools: list[CatalogToolView]


class InstanceView(View):
    id: str
    host: str
    started_at: Timestamp
    last_seen_at: Timestamp


class QueueView(View):
    queued: int
    running: int


class RunStatsView(View):
    succeeded: int
    failed: int
    timed_out: int
    cancelled: int
    success_rate: float | None = Field(description="succeeded / finished runs in the last 24 h; null if none")
    avg_duration_ms: float | None


class CatalogStateView(View):
    servers_available: int
    servers_total: int


class StatusView(View):
    version: str
    uptime_seconds: float
    instances: list[InstanceView]
    queue: QueueView
    active_tasks: int
    runs_24h: RunStatsView
    catalog: CatalogStateView

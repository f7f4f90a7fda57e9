"""What tools return (SPEC §5–§6): response models whose JSON schemas are the tools' output schemas."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC (a naive time is taken as local time, as `timefmt.rfc3339` does)."""
    return moment.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(as_utc), Field(json_schema_extra={"format": "date-time"})]
"""A time, serialised as RFC 3339 UTC with `Z`: held in UTC, so pydantic's own serialiser writes
exactly what `timefmt.rfc3339` would (`2026-11-24T09:00:00Z`, `.123456` when there are
microseconds), without a Python call per field."""


NOT_FOLDED = frozenset({"$ref", "enum", "const", "anyOf", "oneOf", "allOf", "not", "if"})
"""Keywords that would also judge `null` (or could not take it as a type): `anyOf [X, null]` with one
of them in X stays as it is."""


def self_contained(node: Any, resolve: Callable[[JsonSchemaValue], JsonSchemaValue]) -> Any:
    """`node` with every `$ref` replaced by what it points to, and each `anyOf [X, {"type": "null"}]`
    folded into X with `"type": [X's type, "null"]`: the same instances pass and fail.

    Clients validate every tool result against its output schema (the SDK's client with
    `jsonschema`, for 50 runs ~7 ms with `$ref`s and `anyOf`s, ~4.5 ms without), and a schema
    with no `$ref` is one a model reads top to bottom."""
    if isinstance(node, list):
        return [self_contained(item, resolve) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(resolve({"$ref": node["$ref"]}))
        return self_contained(target, resolve) | {key: value for key, value in node.items() if key != "$ref"}
    node = {key: self_contained(value, resolve) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = options[0] if options[1] == {"type": "null"} else options[1]
        if isinstance(other.get("type"), str) and not NOT_FOLDED & other.keys():
            rest = {key: value for key, value in node.items() if key != "anyOf"}
            return other | rest | {"type": [other["type"], "null"]}
    return node


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A view's schema is self-contained (see `self_contained`); the tools' output schemas are."""
        schema = handler(core_schema)
        compact = self_contained(schema, handler.resolve_ref_schema)
        schema.clear()
        schema.update(compact)  # in place: the generator keeps this object as the view's definition
        return schema


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


class SavedTaskView(TaskView):
    """A task as `schedule_task` and `update_task` return it: the Task, and the warnings of its check."""

    warnings: list[ProblemView] = Field(
        default_factory=list,
        description="Steps that could not be checked when it was saved (their server is unavailable); "
        "they are checked again when they run",
    )


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
    arguments: Any = Field(
        description="The rendered arguments, secrets as ***; over 64 KiB a string preview naming "
        "orchestrator://runs/{run_id}/steps/{step_id}/arguments, which holds them whole"
    )
    result: Any = Field(description="The result; over 64 KiB a string preview, and result_uri holds it whole")
    result_uri: str | None
    error: str | None
    skip_reason: str | None
    content: list[dict[str, Any]] | None = Field(
        default=None,
        description="The result's blocks that are not text, in order: [{type, mime_type, uri, name?, size?, "
        "text?}]; read a block whole (binary as a blob) at its uri (a resource link keeps its own)",
    )


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
    params: dict[str, Any] | str = Field(
        description="The run's params; over 64 KiB a string preview naming orchestrator://runs/{run_id}/params"
    )
    steps_total: int
    steps_completed: int
    error: RunErrorView | None
    output: Any = Field(
        description="The run's output; over 64 KiB a string preview naming orchestrator://runs/{run_id}/output"
    )
    log_uri: str
    steps: list[StepView] | None = None
    skipped_fires: int | None = Field(
        None,
        description="A skipped run: how many fire times it stands for (1 or more), from scheduled_for "
        "to last_scheduled_for; null for any other run.",
    )
    last_scheduled_for: Timestamp | None = Field(
        None, description="A skipped run: the last fire time it stands for; null for any other run."
    )


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
    warnings: list[ProblemView] = Field(
        description="Steps that could not be checked now (their server is unavailable); not errors"
    )
    next_runs: list[Timestamp]


class PreviewView(View):
    description: str
    next_runs: list[Timestamp]


class DeletedView(View):
    deleted: bool
    task_id: str


class ServerView(View):
    name: str
    transport: str = Field(description="stdio, http (streamable HTTP), sse (legacy HTTP+SSE) or builtin")
    state: Literal["starting", "available", "unavailable"]
    available: bool
    error: str | None = Field(
        description="Why the server is unavailable, in its own words when it gave any (the end of its "
        "stderr, its HTTP status and body); null when available or starting"
    )


class CatalogToolView(View):
    uses: str
    title: str | None
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any] | None = Field(description="readOnlyHint, destructiveHint, … as declared")
    task_support: str | None = Field(
        description="forbidden, optional or required (a step cannot call a tool that requires MCP tasks)"
    )


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

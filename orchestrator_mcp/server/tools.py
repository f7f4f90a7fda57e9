"""The tools of SPEC §6. Each converts its arguments to one service call and returns its view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field, WithJsonSchema

from orchestrator_mcp.principal import Principal
from orchestrator_mcp.server.calls import ToolCalls
from orchestrator_mcp.server.client_logs import ClientLogLevels
from orchestrator_mcp.server.identity import caller
from orchestrator_mcp.server.schemas import ON_FAILURE_SCHEMA, PIPELINE_SCHEMA, POLICY_SCHEMA, SCHEDULE_SCHEMA
from orchestrator_mcp.service import Orchestrator
from orchestrator_mcp.views import (
    CatalogView,
    DeletedView,
    PreviewView,
    RunList,
    RunView,
    SavedTaskView,
    StatusView,
    TaskList,
    TaskView,
    ValidationView,
)

Ctx = Context[Orchestrator, Any]

TaskId = Annotated[str, Field(min_length=1, max_length=100, description="A task id, e.g. 'task_0193…'.")]
RunId = Annotated[str, Field(min_length=1, max_length=100, description="A run id, e.g. 'run_0193…'.")]
Title = Annotated[
    str, Field(min_length=1, max_length=200, description="A short name, e.g. 'Morning weather'.")
]
Description = Annotated[str, Field(max_length=4000, description="What the task is for (free text).")]
ScheduleArg = Annotated[dict[str, Any], WithJsonSchema(SCHEDULE_SCHEMA)]
PipelineArg = Annotated[list[Any], WithJsonSchema(PIPELINE_SCHEMA)]
OnFailureArg = Annotated[list[Any] | None, WithJsonSchema(ON_FAILURE_SCHEMA)]
PolicyArg = Annotated[dict[str, Any] | None, WithJsonSchema(POLICY_SCHEMA)]
Params = Annotated[
    dict[str, Any] | None,
    Field(description='Values the pipeline reads as params.<name>, e.g. {"city": "Lyon"}.'),
]
Output = Annotated[
    str | None,
    Field(
        max_length=2000, description="JMESPath over the run context giving the run's output; default `vars`."
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Repeat-safe key: the same key from you within 24 h returns the first result "
        "and creates nothing.",
    ),
]
TaskStatusArg = Literal["active", "paused", "completed", "cancelled"]
RunStatusArg = Literal[
    "queued", "running", "succeeded", "failed", "cancelled", "timed_out", "skipped", "interrupted"
]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
IDEMPOTENT_WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


def principal(ctx: Ctx) -> Principal:
    """The caller: the bearer token's owner over HTTP, the local user (every scope) otherwise."""
    return caller(ctx.request_context)


def service(ctx: Ctx) -> Orchestrator:
    return ctx.request_context.lifespan_context


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def register_tools(mcp: MCPServer[Orchestrator], calls: ToolCalls, logs: ClientLogLevels) -> None:
    """Add every tool to `mcp`, each wrapped by `calls` (rate limit, errors, metrics, log line); a waited
    run_now also reports its steps as log notices through `logs`."""

    @mcp.tool(annotations=WRITE)
    @calls.wrap
    async def schedule_task(
        title: Title,
        schedule: ScheduleArg,
        pipeline: PipelineArg,
        ctx: Ctx,
        params: Params = None,
        description: Description | None = None,
        output: Output = None,
        policy: PolicyArg = None,
        on_failure: OnFailureArg = None,
        idempotency_key: IdempotencyKey = None,
    ) -> SavedTaskView:
        """Create a scheduled task: a pipeline of tool calls fired by a schedule, recorded run by run.

        Use it when the user wants something done later or repeatedly ("every weekday at 9",
        "in 2 hours", "every 15 minutes"). Check the pipeline first with validate_pipeline and the times
        with preview_schedule if unsure. Returns the Task, with next_run_at.

        Example: title "Lyon rain alert", schedule {"kind": "cron", "expr": "0 7 * * *", "timezone":
        "Europe/Paris"}, pipeline [{"id": "fc", "uses": "core.echo", "with": {"city": "${{ params.city }}"},
        "save_as": "fc"}], params {"city": "Lyon"}.
        Schedule kinds: once (ISO date-time), interval ("15m", "PT1H"), cron (5 fields or @daily),
        rrule (RFC 5545), manual (run_now only). Steps may use `if` (JMESPath), `${{ expr }}` templates
        over params, vars, steps, run, task and now, `save_as`, `retry`, `timeout_seconds`. A secret
        granted to you is read only as a whole `${{ secrets.NAME }}` inside `with` (e.g. a header
        "Bearer ${{ secrets.API_TOKEN }}"); it is `***` in everything returned.
        """
        return await service(ctx).tasks.schedule_task(
            principal(ctx),
            title=title,
            schedule=schedule,
            pipeline=pipeline,
            params=params,
            description=description,
            output=output,
            policy=policy,
            on_failure=on_failure,
            idempotency_key=idempotency_key,
        )

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def validate_pipeline(
        pipeline: PipelineArg,
        ctx: Ctx,
        params: Params = None,
        schedule: Annotated[dict[str, Any] | None, WithJsonSchema(SCHEDULE_SCHEMA)] = None,
        on_failure: OnFailureArg = None,
        output: Output = None,
    ) -> ValidationView:
        """Check a pipeline (and optionally a schedule) without saving anything.

        Use it before schedule_task or update_task. Returns {valid, errors: [{path, message}], next_runs}:
        every problem at once, each with its path, e.g. {"path": "pipeline[1].with.city", "message":
        "required"}, and the next 5 fire times when a valid schedule is given.
        Example: {"pipeline": [{"id": "a", "uses": "core.echo", "with": {"x": 1}}],
        "schedule": {"kind": "interval", "expr": "15m"}}.
        """
        return await service(ctx).definitions.validate_pipeline(
            principal(ctx),
            pipeline=pipeline,
            params=params,
            schedule=schedule,
            on_failure=on_failure,
            output=output,
        )

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def preview_schedule(
        schedule: ScheduleArg,
        ctx: Ctx,
        count: Annotated[int, Field(ge=1, le=50, description="How many fire times to list (1-50).")] = 5,
    ) -> PreviewView:
        """Show when a schedule would fire, in plain words and as the next fire times (UTC).

        Use it to confirm a schedule with the user before creating a task. Example: {"kind": "cron",
        "expr": "0 9 * * 1-5", "timezone": "Europe/Paris"} -> {"description": "At 09:00, Monday through
        Friday (Europe/Paris)", "next_runs": ["2026-11-24T08:00:00Z", ...]}.
        """
        return await service(ctx).definitions.preview_schedule(principal(ctx), schedule, count)

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def list_tasks(
        ctx: Ctx,
        status: Annotated[TaskStatusArg | None, Field(description="Only tasks in this status.")] = None,
        query: Annotated[
            str | None, Field(max_length=200, description="Text to find in title or description.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size (1-200).")] = 50,
        cursor: Annotated[
            str | None, Field(max_length=500, description="next_cursor of the previous page.")
        ] = None,
    ) -> TaskList:
        """List your tasks, newest first. Returns {tasks, next_cursor}; pass next_cursor to get the next page.

        Example: {"status": "active", "query": "weather"}.
        """
        return await service(ctx).tasks.list_tasks(
            principal(ctx), status=status, query=query, limit=limit, cursor=cursor
        )

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def get_task(task_id: TaskId, ctx: Ctx) -> TaskView:
        """Read one task: its schedule (with a plain-words description), pipeline, policy, status,
        next_run_at and run counters. Use it to check a task before changing it.

        Example: {"task_id": "task_0193ab…"}."""
        return await service(ctx).tasks.get_task(principal(ctx), task_id)

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    @calls.wrap
    async def update_task(
        task_id: TaskId,
        ctx: Ctx,
        title: Title | None = None,
        description: Description | None = None,
        schedule: Annotated[dict[str, Any] | None, WithJsonSchema(SCHEDULE_SCHEMA)] = None,
        pipeline: Annotated[list[Any] | None, WithJsonSchema(PIPELINE_SCHEMA)] = None,
        params: Params = None,
        output: Output = None,
        policy: PolicyArg = None,
        on_failure: OnFailureArg = None,
    ) -> SavedTaskView:
        """Change a task: give only the fields to replace; the result is checked like a new task.

        A new schedule starts counting from now. Runs already started keep the old pipeline.
        Returns the updated Task. Example: {"task_id": "task_0193ab…", "params": {"city": "Paris"}}.
        """
        given = {
            "title": title,
            "description": description,
            "schedule": schedule,
            "pipeline": pipeline,
            "params": params,
            "output": output,
            "policy": policy,
            "on_failure": on_failure,
        }
        changes = {key: value for key, value in given.items() if value is not None}
        return await service(ctx).tasks.update_task(principal(ctx), task_id, changes)

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    @calls.wrap
    async def pause_task(task_id: TaskId, ctx: Ctx) -> TaskView:
        """Stop a task from firing until resume_task; its history and settings stay. Returns the Task
        (status "paused"). Runs already going are not stopped (use cancel_run).

        Example: {"task_id": "task_0193ab…"}."""
        return await service(ctx).tasks.pause_task(principal(ctx), task_id)

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    @calls.wrap
    async def resume_task(task_id: TaskId, ctx: Ctx) -> TaskView:
        """Let a paused task fire again, from its next fire time after now (times missed while paused
        are not made up). Returns the Task with its new next_run_at.

        Example: {"task_id": "task_0193ab…"}."""
        return await service(ctx).tasks.resume_task(principal(ctx), task_id)

    @mcp.tool(annotations=DESTRUCTIVE)
    @calls.wrap
    async def cancel_task(
        task_id: TaskId,
        ctx: Ctx,
        cancel_running: Annotated[bool, Field(description="Also cancel its runs in progress.")] = True,
    ) -> TaskView:
        """End a task for good: it never fires again, its queued runs are cancelled (and its running ones
        unless cancel_running is false). History is kept. Returns the Task (status "cancelled").

        Example: {"task_id": "task_0193ab…", "cancel_running": false}."""
        return await service(ctx).tasks.cancel_task(principal(ctx), task_id, cancel_running)

    @mcp.tool(annotations=DESTRUCTIVE)
    @calls.wrap
    async def delete_task(task_id: TaskId, ctx: Ctx) -> DeletedView:
        """Delete a task with all its runs and logs (cannot be undone; cancel_task keeps history).
        Returns {"deleted": true, "task_id": …}.

        Example: {"task_id": "task_0193ab…"}."""
        return await service(ctx).tasks.delete_task(principal(ctx), task_id)

    @mcp.tool(annotations=WRITE)
    @calls.wrap
    async def run_now(
        task_id: TaskId,
        ctx: Ctx,
        params: Annotated[
            dict[str, Any] | None, Field(description="Merged over the task's params for this run only.")
        ] = None,
        wait: Annotated[
            bool, Field(description="Wait for the run to end (up to wait_timeout_seconds).")
        ] = False,
        wait_timeout_seconds: Annotated[float, Field(gt=0, le=3600, description="How long to wait.")] = 60,
        idempotency_key: IdempotencyKey = None,
    ) -> RunView:
        """Start a run of a task now, outside its schedule (also for manual tasks and paused ones).

        Returns the Run: queued or running, or its final state with steps when wait is true and it ended
        in time (progress notifications follow each step if you send a progress token).
        Example: {"task_id": "task_0193ab…", "params": {"city": "Paris"}, "wait": true}.
        """

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.report_progress(done, total, message)
            await logs.send(ctx, "info", f"{task_id}: {message}")

        return await service(ctx).runs.run_now(
            principal(ctx),
            task_id,
            params=params,
            wait=wait,
            wait_timeout_seconds=wait_timeout_seconds,
            idempotency_key=idempotency_key,
            progress=progress,
        )

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def list_runs(
        ctx: Ctx,
        task_id: Annotated[str | None, Field(max_length=100, description="Only runs of this task.")] = None,
        status: Annotated[RunStatusArg | None, Field(description="Only runs in this status.")] = None,
        since: Annotated[
            datetime | None, Field(description="Only runs queued at or after this time (RFC 3339).")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="Page size (1-200).")] = 50,
        cursor: Annotated[
            str | None, Field(max_length=500, description="next_cursor of the previous page.")
        ] = None,
    ) -> RunList:
        """List runs, newest first, without their steps (get_run has them). Returns {runs, next_cursor}.

        Example: {"task_id": "task_0193ab…", "status": "failed", "limit": 10}.
        """
        return await service(ctx).runs.list_runs(
            principal(ctx), task_id=task_id, status=status, since=_utc(since), limit=limit, cursor=cursor
        )

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def get_run(
        run_id: RunId,
        ctx: Ctx,
        include_steps: Annotated[bool, Field(description="Include each step's record.")] = True,
    ) -> RunView:
        """Read one run: status, times, error ({step_id, type, message}), output and, by default, every
        step's arguments, result, attempts and error. The full log is the resource at log_uri.

        Example: {"run_id": "run_0193ab…", "include_steps": false}."""
        return await service(ctx).runs.get_run(principal(ctx), run_id, include_steps)

    @mcp.tool(annotations=DESTRUCTIVE)
    @calls.wrap
    async def cancel_run(run_id: RunId, ctx: Ctx) -> RunView:
        """Cancel a run: a queued one at once; a running one has its current tool call cancelled and ends
        "cancelled" within about 2 s. Returns the Run. A run that already ended is returned unchanged.

        Example: {"run_id": "run_0193ab…"}."""
        return await service(ctx).runs.cancel_run(principal(ctx), run_id)

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def list_catalog(
        ctx: Ctx,
        server: Annotated[str | None, Field(max_length=100, description="Only this server's tools.")] = None,
    ) -> CatalogView:
        """List every tool a pipeline step can call, as `uses` addresses ("core.echo", "http.request", …)
        with descriptions, input and output schemas and annotations, and each tool server with its state
        (starting, available, unavailable) and, when unavailable, why. Use it before writing a pipeline.

        Example: {"server": "core"}."""
        return await service(ctx).status.catalog_view(principal(ctx), server)

    @mcp.tool(annotations=READ)
    @calls.wrap
    async def server_status(ctx: Ctx) -> StatusView:
        """The orchestrator's health: version, uptime, live instances, queue depth, active tasks, the last
        24 h of runs (counts, success rate, mean duration) and catalog availability. Use it to check
        the orchestrator is healthy.

        Example: {} -> {"version": "0.1.0", "queue": {"queued": 0, "running": 1}, …}."""
        return await service(ctx).status.server_status(principal(ctx))

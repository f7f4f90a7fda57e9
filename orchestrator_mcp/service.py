"""The one API the MCP layer calls: every tool of SPEC §6 as a method, with its checks.

Methods take the calling `Principal` and plain values, raise `OrchestratorError`s and return
views. A principal only ever sees its own tasks and runs; anything else is "not found".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import anyio
from pydantic import ValidationError

from orchestrator_mcp import __version__
from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import Clock
from orchestrator_mcp.cursor import decode_cursor, encode_cursor
from orchestrator_mcp.domain.pipeline import check_pipeline, problems_from_validation
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus, TaskStatus, Trigger
from orchestrator_mcp.domain.schedule import (
    Schedule,
    check_schedule,
    describe_schedule,
    first_fire_time,
    next_fire_time,
    schedule_anchor,
    upcoming_fire_times,
)
from orchestrator_mcp.engine.events import EventStream, RunEvents
from orchestrator_mcp.engine.scheduler import Engine, new_run
from orchestrator_mcp.errors import Conflict, InvalidArgument, NotFound
from orchestrator_mcp.ids import new_id
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import IdempotencyRow, LogRow, RunRow, StepRow, TaskRow, log_line
from orchestrator_mcp.timefmt import rfc3339
from orchestrator_mcp.views import (
    CatalogStateView,
    CatalogToolView,
    CatalogView,
    DeletedView,
    InstanceView,
    PreviewView,
    ProblemView,
    QueueView,
    RunErrorView,
    RunList,
    RunStatsView,
    RunView,
    ServerView,
    StatusView,
    StepView,
    TaskList,
    TaskView,
    ValidationView,
)

RESULT_LIMIT = 64 * 1024
IDEMPOTENCY_WINDOW = timedelta(hours=24)
CANCEL_WAIT_SECONDS = 2.0

Progress = Callable[[float, float, str], Awaitable[None]]


def run_uri(run_id: str) -> str:
    return f"orchestrator://runs/{run_id}"


class Orchestrator:
    """Tasks, runs and the catalog, as the tools see them."""

    def __init__(
        self,
        store: SqlStore,
        catalog: Catalog,
        engine: Engine,
        clock: Clock,
        events: RunEvents,
        instance_timeout_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self.clock = clock
        self.events = events
        self.instance_timeout = timedelta(seconds=instance_timeout_seconds)

    # -- checks -----------------------------------------------------------------------------

    def parse_schedule(self, raw: Mapping[str, Any], problems: list[Problem]) -> Schedule | None:
        try:
            schedule = Schedule.model_validate(raw)
        except ValidationError as error:
            problems.extend(problems_from_validation(error, "schedule"))
            return None
        found = check_schedule(schedule, self.clock.now())
        problems.extend(found)
        return None if found else schedule

    def parse_policy(self, raw: Mapping[str, Any] | None, problems: list[Problem]) -> Policy:
        try:
            return Policy.model_validate(raw or {})
        except ValidationError as error:
            problems.extend(problems_from_validation(error, "policy"))
            return Policy()

    async def check_pipeline(
        self, pipeline: Sequence[Any], on_failure: Sequence[Any] | None, output: str | None
    ) -> list[Problem]:
        """Every problem of a pipeline, after loading the tool lists of the servers it names."""
        uses = [
            step["uses"]
            for step in [*pipeline, *(on_failure or [])]
            if isinstance(step, Mapping) and isinstance(step.get("uses"), str)
        ]
        await self.catalog.prepare(uses)
        return check_pipeline(
            pipeline, on_failure, output, self.catalog.schemas(), self.catalog.unavailable()
        )[2]

    async def check_definition(
        self,
        *,
        title: str,
        schedule: Mapping[str, Any],
        pipeline: Sequence[Any],
        on_failure: Sequence[Any] | None,
        output: str | None,
        policy: Mapping[str, Any] | None,
    ) -> tuple[Schedule, Policy]:
        """Check a whole task definition; raises InvalidArgument listing every problem."""
        problems: list[Problem] = []
        if not title.strip():
            problems.append(Problem("title", "must not be empty"))
        parsed_schedule = self.parse_schedule(schedule, problems)
        parsed_policy = self.parse_policy(policy, problems)
        problems.extend(await self.check_pipeline(pipeline, on_failure, output))
        if problems or parsed_schedule is None:
            raise InvalidArgument(problems)
        return parsed_schedule, parsed_policy

    # -- tasks ------------------------------------------------------------------------------

    async def schedule_task(
        self,
        who: Principal,
        *,
        title: str,
        schedule: Mapping[str, Any],
        pipeline: Sequence[Any],
        params: Mapping[str, Any] | None = None,
        description: str | None = None,
        output: str | None = None,
        policy: Mapping[str, Any] | None = None,
        on_failure: Sequence[Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TaskView:
        who.require("tasks:write")
        if idempotency_key:
            earlier = await self._idempotent(who, "schedule_task", idempotency_key)
            if earlier is not None and (task := await self.store.get_task(earlier)) is not None:
                return self.task_view(task)
        parsed, parsed_policy = await self.check_definition(
            title=title,
            schedule=schedule,
            pipeline=pipeline,
            on_failure=on_failure,
            output=output,
            policy=policy,
        )
        now = self.clock.now()
        first = first_fire_time(parsed, now)
        task = TaskRow(
            id=new_id("task"),
            owner=who.name,
            title=title.strip(),
            description=description or "",
            status=TaskStatus.ACTIVE.value,
            schedule=parsed.model_dump(mode="json"),
            anchor=schedule_anchor(parsed, now, first),
            pipeline=list(pipeline),
            on_failure=list(on_failure) if on_failure else None,
            params=dict(params or {}),
            output=output,
            policy=parsed_policy.model_dump(mode="json", exclude_unset=True),
            next_run_at=first,
            created_at=now,
            updated_at=now,
        )
        await self.store.insert_task(task)
        if idempotency_key:
            await self._remember(who, "schedule_task", idempotency_key, task.id)
        self.engine.wake()
        return self.task_view(task)

    async def validate_pipeline(
        self,
        who: Principal,
        *,
        pipeline: Sequence[Any],
        params: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
        on_failure: Sequence[Any] | None = None,
        output: str | None = None,
    ) -> ValidationView:
        who.require("tasks:read")
        problems = await self.check_pipeline(pipeline, on_failure, output)
        next_runs: list[datetime] = []
        if schedule is not None:
            parsed = self.parse_schedule(schedule, problems)
            if parsed is not None:
                next_runs = upcoming_fire_times(parsed, self.clock.now(), 5)
        return ValidationView(
            valid=not problems,
            errors=[ProblemView(path=p.path, message=p.message) for p in problems],
            next_runs=next_runs,
        )

    def preview_schedule(self, who: Principal, schedule: Mapping[str, Any], count: int) -> PreviewView:
        who.require("tasks:read")
        problems: list[Problem] = []
        parsed = self.parse_schedule(schedule, problems)
        if parsed is None:
            raise InvalidArgument(problems)
        return PreviewView(
            description=describe_schedule(parsed),
            next_runs=upcoming_fire_times(parsed, self.clock.now(), count),
        )

    async def list_tasks(
        self, who: Principal, *, status: str | None, query: str | None, limit: int, cursor: str | None
    ) -> TaskList:
        who.require("tasks:read")
        after = decode_cursor(cursor) if cursor else None
        owner = None if who.is_admin else who.name
        rows = await self.store.list_tasks(owner, status, query, limit + 1, after)
        page = rows[:limit]
        more = len(rows) > limit
        return TaskList(
            tasks=[self.task_view(row) for row in page],
            next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        )

    async def owned_task(self, who: Principal, task_id: str) -> TaskRow:
        task = await self.store.get_task(task_id)
        if task is None or not who.owns(task.owner):
            raise NotFound(f"task '{task_id}' not found")
        return task

    async def get_task(self, who: Principal, task_id: str) -> TaskView:
        who.require("tasks:read")
        return self.task_view(await self.owned_task(who, task_id))

    async def update_task(self, who: Principal, task_id: str, changes: Mapping[str, Any]) -> TaskView:
        """Replace the given fields; the whole result is checked as a new definition would be."""
        who.require("tasks:write")
        task = await self.owned_task(who, task_id)
        if task.status == TaskStatus.CANCELLED.value:
            raise Conflict(f"task '{task_id}' is cancelled; schedule a new task instead")
        if not changes:
            raise InvalidArgument("give at least one field to change", "task_id")
        merged = {
            "title": task.title,
            "schedule": task.schedule,
            "pipeline": task.pipeline,
            "on_failure": task.on_failure,
            "output": task.output,
            "policy": task.policy,
        } | {
            key: value
            for key, value in changes.items()
            if key in ("title", "schedule", "pipeline", "on_failure", "output", "policy")
        }
        parsed, parsed_policy = await self.check_definition(**merged)
        now = self.clock.now()
        values: dict[str, Any] = {"updated_at": now}
        for key in ("title", "description", "params", "output", "pipeline"):
            if key in changes:
                values[key] = changes[key].strip() if key == "title" else changes[key]
        if "on_failure" in changes:
            values["on_failure"] = list(changes["on_failure"]) if changes["on_failure"] else None
        if "policy" in changes:
            values["policy"] = parsed_policy.model_dump(mode="json", exclude_unset=True)
        if "schedule" in changes:
            first = first_fire_time(parsed, now)
            values |= {
                "schedule": parsed.model_dump(mode="json"),
                "anchor": schedule_anchor(parsed, now, first),
                "next_run_at": first,
            }
            if task.status == TaskStatus.COMPLETED.value and first is not None:
                values["status"] = TaskStatus.ACTIVE.value
        updated = await self.store.update_task(task_id, values)
        self.engine.wake()
        return self.task_view(updated or task)

    async def pause_task(self, who: Principal, task_id: str) -> TaskView:
        who.require("tasks:write")
        task = await self.owned_task(who, task_id)
        if task.status == TaskStatus.PAUSED.value:
            return self.task_view(task)
        if task.status != TaskStatus.ACTIVE.value:
            raise Conflict(f"task '{task_id}' is {task.status}; only an active task can be paused")
        updated = await self.store.update_task(
            task_id, {"status": TaskStatus.PAUSED.value, "updated_at": self.clock.now()}
        )
        return self.task_view(updated or task)

    async def resume_task(self, who: Principal, task_id: str) -> TaskView:
        """Fire times that passed while paused are not made up: the next one after now is next."""
        who.require("tasks:write")
        task = await self.owned_task(who, task_id)
        if task.status == TaskStatus.ACTIVE.value:
            return self.task_view(task)
        if task.status != TaskStatus.PAUSED.value:
            raise Conflict(f"task '{task_id}' is {task.status}; only a paused task can be resumed")
        now = self.clock.now()
        schedule = Schedule.model_validate(task.schedule)
        upcoming = task.next_run_at
        if upcoming is not None and upcoming <= now and task.anchor is not None:
            upcoming = next_fire_time(schedule, now, task.anchor)
        status = (
            TaskStatus.ACTIVE if upcoming is not None or schedule.kind == "manual" else TaskStatus.COMPLETED
        )
        updated = await self.store.update_task(
            task_id,
            {"status": status.value, "next_run_at": upcoming, "consecutive_failures": 0, "updated_at": now},
        )
        self.engine.wake()
        return self.task_view(updated or task)

    async def cancel_task(self, who: Principal, task_id: str, cancel_running: bool) -> TaskView:
        who.require("tasks:write")
        task = await self.owned_task(who, task_id)
        now = self.clock.now()
        updated = await self.store.update_task(
            task_id, {"status": TaskStatus.CANCELLED.value, "next_run_at": None, "updated_at": now}
        )
        for run_id in await self.store.cancel_task_runs(task_id, now, cancel_running):
            self.engine.cancel_local(run_id, "the task was cancelled")
        return self.task_view(updated or task)

    async def delete_task(self, who: Principal, task_id: str) -> DeletedView:
        who.require("tasks:write")
        await self.owned_task(who, task_id)
        for run_id in await self.store.cancel_task_runs(task_id, self.clock.now(), True):
            self.engine.cancel_local(run_id, "the task was deleted")
        await self.store.delete_task(task_id)
        return DeletedView(deleted=True, task_id=task_id)

    # -- runs -------------------------------------------------------------------------------

    async def run_now(
        self,
        who: Principal,
        task_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        wait: bool = False,
        wait_timeout_seconds: float = 60.0,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> RunView:
        who.require("runs:write")
        task = await self.owned_task(who, task_id)
        run: RunRow | None = None
        if idempotency_key:
            earlier = await self._idempotent(who, "run_now", idempotency_key)
            run = await self.store.get_run(earlier) if earlier else None
        if run is None:
            if task.status == TaskStatus.CANCELLED.value:
                raise Conflict(f"task '{task_id}' is cancelled; it can no longer run")
            now = self.clock.now()
            policy = Policy.model_validate(task.policy)
            run = new_run(task, Trigger.MANUAL, now, now, policy, task.params | dict(params or {}))
            await self.store.insert_run(run)
            if idempotency_key:
                await self._remember(who, "run_now", idempotency_key, run.id)
            self.engine.wake(due_times=False)
            if wait:
                await self._wait_for(run.id, wait_timeout_seconds, progress, queued=True)
        elif wait:
            await self._wait_for(run.id, wait_timeout_seconds, progress)
        return await self.get_run(who, run.id, include_steps=True)

    async def _wait_for(
        self, run_id: str, wait_seconds: float, progress: Progress | None, queued: bool = False
    ) -> None:
        """Return once the run has ended (or after `wait_seconds`), reporting each step to `progress`.

        The run is read at the start (not when this call has just `queued` it: it has hardly begun)
        and every 0.25 s (it may execute in another process, or end before the listener is in
        place), not on each step: a read per step would slow the run it waits for. This process's
        notice that it ended is trusted without a read: it is sent after the run's end is stored.
        Progress is read from a bounded stream: a client slow to take it loses intermediate steps,
        never slows the run."""
        ended = anyio.Event()

        async def relay(stream: EventStream) -> None:
            async for event in stream:
                if progress is not None and event.steps_total and (event.steps_done or event.final):
                    await progress(event.steps_done, event.steps_total, event.message)
            ended.set()

        with self.events.stream(run_id) as stream, anyio.move_on_after(wait_seconds):
            async with anyio.create_task_group() as group:
                group.start_soon(relay, stream)
                if queued or not await self._has_ended(run_id):
                    while not ended.is_set():
                        with anyio.move_on_after(0.25):
                            await ended.wait()
                        if not ended.is_set() and await self._has_ended(run_id):
                            break
                group.cancel_scope.cancel()

    async def _has_ended(self, run_id: str) -> bool:
        """The run is stored as ended (or is gone)."""
        run = await self.store.get_run(run_id)
        return run is None or RunStatus(run.status).is_final

    async def owned_run(self, who: Principal, run_id: str) -> RunRow:
        run = await self.store.get_run(run_id)
        if run is None or not who.owns(run.owner):
            raise NotFound(f"run '{run_id}' not found")
        return run

    async def get_run(self, who: Principal, run_id: str, include_steps: bool = True) -> RunView:
        who.require("runs:read")
        run = await self.owned_run(who, run_id)
        steps = await self.store.list_steps(run_id) if include_steps else None
        return self.run_view(run, steps)

    async def list_runs(
        self,
        who: Principal,
        *,
        task_id: str | None,
        status: str | None,
        since: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> RunList:
        who.require("runs:read")
        if task_id is not None:
            await self.owned_task(who, task_id)
        after = decode_cursor(cursor) if cursor else None
        owner = None if who.is_admin else who.name
        rows = await self.store.list_runs(owner, task_id, status, since, limit + 1, after)
        page = rows[:limit]
        more = len(rows) > limit
        return RunList(
            runs=[self.run_view(row, None) for row in page],
            next_cursor=encode_cursor(page[-1].queued_at, page[-1].id) if more else None,
        )

    async def cancel_run(self, who: Principal, run_id: str) -> RunView:
        """A queued run ends at once; a running one is cut within about 2 s, in whatever process runs it."""
        who.require("runs:write")
        run = await self.owned_run(who, run_id)
        now = self.clock.now()
        if run.status == RunStatus.QUEUED.value:
            error = RunError(ErrorType.CANCELLED, "cancelled before it started")
            if await self.store.cancel_queued(run_id, RunEnd(RunStatus.CANCELLED, now, error).columns()):
                line = log_line(run_id, now, "INFO", "run cancelled before it started")
                await self.store.append_logs([line])
        elif run.status == RunStatus.RUNNING.value:
            if not self.engine.cancel_local(run_id, "cancelled by request"):
                await self.store.update_run(run_id, {"cancel_requested": True})
            with anyio.move_on_after(CANCEL_WAIT_SECONDS):
                while True:
                    current = await self.store.get_run(run_id)
                    if current is None or RunStatus(current.status).is_final:
                        break
                    await anyio.sleep(0.05)
        return await self.get_run(who, run_id)

    async def run_log(self, who: Principal, run_id: str) -> str:
        who.require("runs:read")
        await self.owned_run(who, run_id)
        return "".join(format_log_line(row) + "\n" for row in await self.store.read_logs(run_id))

    async def step_result(self, who: Principal, run_id: str, step_id: str) -> Any:
        who.require("runs:read")
        await self.owned_run(who, run_id)
        for step in await self.store.list_steps(run_id):
            if step.step_id == step_id:
                return step.result
        raise NotFound(f"step '{step_id}' not found in run '{run_id}'")

    # -- catalog and status -----------------------------------------------------------------

    async def catalog_view(self, who: Principal, server: str | None) -> CatalogView:
        """Every server and tool; waits for the start-up probes so a server still starting is not missed."""
        who.require("catalog:read")
        await self.catalog.settle()
        if server is not None and server not in self.catalog.servers:
            known = ", ".join(sorted(self.catalog.servers))
            raise NotFound(f"server '{server}' not found; the catalog has: {known}")
        servers = [
            ServerView(name=c.name, transport=c.transport, available=c.available, error=c.error)
            for c in self.catalog.servers.values()
            if server is None or c.name == server
        ]
        tools = [
            CatalogToolView(uses=t.uses, description=t.description, input_schema=t.input_schema)
            for t in self.catalog.tools(server)
        ]
        return CatalogView(servers=servers, tools=tools)

    async def server_status(self, who: Principal) -> StatusView:
        who.require("tasks:read")
        now = self.clock.now()
        owner = None if who.is_admin else who.name
        queue = await self.store.queue_counts(owner)
        stats = await self.store.run_stats(owner, now - timedelta(hours=24))
        finished = sum(count for count, _ in stats.values())
        durations = [(count, avg) for count, avg in stats.values() if avg is not None]
        weight = sum(count for count, _ in durations)
        succeeded = stats.get(RunStatus.SUCCEEDED.value, (0, None))[0]
        executed = finished - stats.get(RunStatus.SKIPPED.value, (0, None))[0]
        instances = await self.store.list_instances(now - self.instance_timeout)
        await self.catalog.settle()
        servers = list(self.catalog.servers.values())
        return StatusView(
            version=__version__,
            uptime_seconds=round((now - self.engine.started_at).total_seconds(), 3),
            instances=[
                InstanceView(id=i.id, host=i.host, started_at=i.started_at, last_seen_at=i.last_seen_at)
                for i in instances
            ],
            queue=QueueView(queued=queue.get("queued", 0), running=queue.get("running", 0)),
            active_tasks=await self.store.count_tasks(owner, TaskStatus.ACTIVE.value),
            runs_24h=RunStatsView(
                succeeded=succeeded,
                failed=stats.get(RunStatus.FAILED.value, (0, None))[0],
                timed_out=stats.get(RunStatus.TIMED_OUT.value, (0, None))[0],
                cancelled=stats.get(RunStatus.CANCELLED.value, (0, None))[0],
                success_rate=round(succeeded / executed, 4) if executed else None,
                avg_duration_ms=round(sum(c * a for c, a in durations) / weight, 1) if weight else None,
            ),
            catalog=CatalogStateView(
                servers_available=sum(1 for c in servers if c.available), servers_total=len(servers)
            ),
        )

    # -- views and helpers ------------------------------------------------------------------

    def task_view(self, task: TaskRow) -> TaskView:
        return TaskView(
            id=task.id,
            title=task.title,
            description=task.description,
            owner=task.owner,
            status=task.status,
            schedule=task.schedule,
            schedule_description=schedule_description(task.schedule),
            pipeline=task.pipeline,
            on_failure=task.on_failure,
            params=task.params,
            output=task.output,
            policy=full_policy(task.policy),
            next_run_at=task.next_run_at if task.status == TaskStatus.ACTIVE.value else None,
            last_run_at=task.last_run_at,
            last_run_status=task.last_run_status,
            run_count=task.run_count,
            success_count=task.success_count,
            failure_count=task.failure_count,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )

    def run_view(self, run: RunRow, steps: list[StepRow] | None) -> RunView:
        return RunView(
            id=run.id,
            task_id=run.task_id,
            task_title=run.task_title,
            trigger=run.trigger,
            status=run.status,
            scheduled_for=run.scheduled_for,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_ms=run.duration_ms,
            attempt=run.attempt,
            params=run.params,
            steps_total=run.steps_total,
            steps_completed=run.steps_completed,
            error=RunErrorView.model_validate(run.error) if run.error else None,
            output=run.output,
            log_uri=f"{run_uri(run.id)}/log",
            steps=None if steps is None else [step_view(step) for step in steps],
        )

    async def _idempotent(self, who: Principal, tool: str, key: str) -> str | None:
        return await self.store.find_idempotent(who.name, tool, key, self.clock.now() - IDEMPOTENCY_WINDOW)

    async def _remember(self, who: Principal, tool: str, key: str, result_id: str) -> None:
        await self.store.remember_idempotent(
            IdempotencyRow(
                owner=who.name, tool=tool, key=key, created_at=self.clock.now(), result_id=result_id
            )
        )


VIEW_CACHE_SIZE = 1024
"""How many distinct schedules and policies keep their description or defaults-filled form: tasks
often share them, and a task is read far more often than it is changed."""


def canonical_json(value: Any) -> str:
    """The same text for the same JSON value, whatever its keys' order."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def schedule_description(schedule: Mapping[str, Any]) -> str:
    """`describe_schedule` of a stored schedule (cron and rrule wording costs ~0.1 ms each time)."""
    return _describe_stored_schedule(canonical_json(schedule))


@lru_cache(maxsize=VIEW_CACHE_SIZE)
def _describe_stored_schedule(schedule_json: str) -> str:
    return describe_schedule(Schedule.model_validate(json.loads(schedule_json)))


def full_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A stored policy with every default filled in, as JSON values; a new dict on each call."""
    full: dict[str, Any] = json.loads(_full_policy_json(canonical_json(policy)))
    return full


@lru_cache(maxsize=VIEW_CACHE_SIZE)
def _full_policy_json(policy_json: str) -> str:
    return json.dumps(Policy.model_validate(json.loads(policy_json)).model_dump(mode="json"))


def step_view(step: StepRow) -> StepView:
    result, uri = step.result, None
    if step.result_size > RESULT_LIMIT:
        uri = f"{run_uri(step.run_id)}/steps/{step.step_id}/result"
        result = json.dumps(step.result, ensure_ascii=False)[:RESULT_LIMIT]
    return StepView(
        step_id=step.step_id,
        uses=step.uses,
        phase=step.phase,
        status=step.status,
        attempts=step.attempts,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_ms=step.duration_ms,
        arguments=step.arguments,
        result=result,
        result_uri=uri,
        error=step.error,
        skip_reason=step.skip_reason,
    )


def format_log_line(row: LogRow) -> str:
    """`<time> <LEVEL> [step <id>] <message>` (SPEC §7)."""
    step = f" [step {row.step_id}]" if row.step_id else ""
    return f"{rfc3339(row.at)} {row.level}{step} {row.message}"

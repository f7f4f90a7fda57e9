"""Tasks as the tools see them: create, list, read, change, pause, resume, cancel, delete.

Every method takes the calling `Principal`, checks the one scope its call needs, and shows the
principal only its own tasks (an admin sees all); another principal's task is "not found".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.cursor import decode_cursor, page_of
from orchestrator_mcp.domain.run import TaskStatus
from orchestrator_mcp.domain.schedule import Schedule, first_fire_time, next_fire_time, schedule_anchor
from orchestrator_mcp.engine.scheduler import Engine
from orchestrator_mcp.errors import Conflict, InvalidArgument, NotFound
from orchestrator_mcp.ids import new_id
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.service.definitions import Definitions
from orchestrator_mcp.service.idempotency import fresh_after, key_row
from orchestrator_mcp.service.quotas import TaskQuotas
from orchestrator_mcp.service.row_views import saved_view, task_view
from orchestrator_mcp.store.base import Store, TaskQuotaFull
from orchestrator_mcp.store.tables import TaskRow
from orchestrator_mcp.views import DeletedView, SavedTaskView, TaskList, TaskView

CHANGEABLE = ("title", "schedule", "pipeline", "on_failure", "output", "policy")
"""The fields of a definition that `update_task` checks again as a whole."""


class Tasks:
    """The principal's tasks."""

    def __init__(
        self,
        store: Store,
        definitions: Definitions,
        engine: Engine,
        clock: Clock,
        quotas: TaskQuotas | None = None,
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.engine = engine
        self.clock = clock
        self.quotas = quotas or TaskQuotas()

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
    ) -> SavedTaskView:
        """Check the definition and store the task, with its first fire time; a key already used
        within a day returns the task it made (concurrent calls with one key make one task). The
        definition's size and the principal's count of active or paused tasks are bounded (quotas)."""
        who.require("tasks:write")
        if idempotency_key:
            earlier = await self._by_key(who, idempotency_key)
            if earlier is not None:
                return saved_view(earlier)
        self.quotas.check_definition(pipeline, params, output, on_failure)
        parsed, parsed_policy, warnings = await self.definitions.check(
            owner=who.name,
            title=title,
            schedule=schedule,
            pipeline=pipeline,
            on_failure=on_failure,
            output=output,
            policy=policy,
        )
        now = self.clock.now()
        first = await self.definitions.fire_times(lambda: first_fire_time(parsed, now))
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
        limit = self.quotas.max_active_tasks
        try:
            if idempotency_key:
                key = key_row(who, "schedule_task", idempotency_key, task.id, now)
                holder = await self.store.insert_task_once(task, key, fresh_after(now), limit)
                if holder != task.id:
                    return saved_view(await self._held(holder, idempotency_key))
            else:
                await self.store.insert_task(task, limit)
        except TaskQuotaFull as error:
            raise self.quotas.full(who.name) from error
        self.engine.wake()
        return saved_view(task, warnings)

    async def _by_key(self, who: Principal, key: str) -> TaskRow | None:
        now = self.clock.now()
        earlier = await self.store.find_idempotent(who.name, "schedule_task", key, fresh_after(now))
        return None if earlier is None else await self.store.get_task(earlier)

    async def _held(self, task_id: str, key: str) -> TaskRow:
        earlier = await self.store.get_task(task_id)
        if earlier is None:  # deleted between the insert that lost and this read
            raise Conflict(f"idempotency_key '{key}': the task it made was just deleted; call again")
        return earlier

    async def list_tasks(
        self, who: Principal, *, status: str | None, query: str | None, limit: int, cursor: str | None
    ) -> TaskList:
        who.require("tasks:read")
        after = decode_cursor(cursor) if cursor else None
        rows = await self.store.list_tasks(who.sees, status, query, limit + 1, after)
        page, next_cursor = page_of(rows, limit, lambda task: (task.created_at, task.id))
        return TaskList(tasks=[task_view(row) for row in page], next_cursor=next_cursor)

    async def owned(self, who: Principal, task_id: str) -> TaskRow:
        """The task, if `who` may see it (no scope is checked: the caller has checked its own).

        Raises:
            NotFound: no such task, or another principal's.
        """
        task = await self.store.get_task(task_id)
        if task is None or not who.owns(task.owner):
            raise NotFound(f"task '{task_id}' not found")
        return task

    async def get_task(self, who: Principal, task_id: str) -> TaskView:
        who.require("tasks:read")
        return task_view(await self.owned(who, task_id))

    async def update_task(self, who: Principal, task_id: str, changes: Mapping[str, Any]) -> SavedTaskView:
        """Replace the given fields; the whole result is checked as a new definition would be."""
        who.require("tasks:write")
        task = await self.owned(who, task_id)
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
        } | {key: value for key, value in changes.items() if key in CHANGEABLE}
        params = changes["params"] if "params" in changes else task.params
        self.quotas.check_definition(merged["pipeline"], params, merged["output"], merged["on_failure"])
        parsed, parsed_policy, warnings = await self.definitions.check(owner=task.owner, **merged)
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
            first = await self.definitions.fire_times(lambda: first_fire_time(parsed, now))
            values |= {
                "schedule": parsed.model_dump(mode="json"),
                "anchor": schedule_anchor(parsed, now, first),
                "next_run_at": first,
            }
            if task.status == TaskStatus.COMPLETED.value and first is not None:
                values["status"] = TaskStatus.ACTIVE.value
        # A completed task made active again counts toward the quota once more.
        limit = self.quotas.max_active_tasks if "status" in values else None
        try:
            updated = await self.store.update_task(task_id, values, limit)
        except TaskQuotaFull as error:
            raise self.quotas.full(task.owner) from error
        self.engine.wake()
        return saved_view(updated or task, warnings)

    async def pause_task(self, who: Principal, task_id: str) -> TaskView:
        who.require("tasks:write")
        task = await self.owned(who, task_id)
        if task.status == TaskStatus.PAUSED.value:
            return task_view(task)
        if task.status != TaskStatus.ACTIVE.value:
            raise Conflict(f"task '{task_id}' is {task.status}; only an active task can be paused")
        updated = await self.store.update_task(
            task_id, {"status": TaskStatus.PAUSED.value, "updated_at": self.clock.now()}
        )
        return task_view(updated or task)

    async def resume_task(self, who: Principal, task_id: str) -> TaskView:
        """Fire times that passed while paused are not made up: the next one after now is next."""
        who.require("tasks:write")
        task = await self.owned(who, task_id)
        if task.status == TaskStatus.ACTIVE.value:
            return task_view(task)
        if task.status != TaskStatus.PAUSED.value:
            raise Conflict(f"task '{task_id}' is {task.status}; only a paused task can be resumed")
        now = self.clock.now()
        schedule = Schedule.model_validate(task.schedule)
        upcoming = task.next_run_at
        if upcoming is not None and upcoming <= now and task.anchor is not None:
            anchor = task.anchor
            upcoming = await self.definitions.fire_times(lambda: next_fire_time(schedule, now, anchor))
        status = (
            TaskStatus.ACTIVE if upcoming is not None or schedule.kind == "manual" else TaskStatus.COMPLETED
        )
        updated = await self.store.update_task(
            task_id,
            {"status": status.value, "next_run_at": upcoming, "consecutive_failures": 0, "updated_at": now},
        )
        self.engine.wake()
        return task_view(updated or task)

    async def cancel_task(self, who: Principal, task_id: str, cancel_running: bool) -> TaskView:
        who.require("tasks:write")
        task = await self.owned(who, task_id)
        now = self.clock.now()
        updated = await self.store.update_task(
            task_id, {"status": TaskStatus.CANCELLED.value, "next_run_at": None, "updated_at": now}
        )
        for run_id in await self.store.cancel_task_runs(task_id, now, cancel_running):
            self.engine.cancel_local(run_id, "the task was cancelled")
        return task_view(updated or task)

    async def delete_task(self, who: Principal, task_id: str) -> DeletedView:
        who.require("tasks:write")
        await self.owned(who, task_id)
        for run_id in await self.store.cancel_task_runs(task_id, self.clock.now(), True):
            self.engine.cancel_local(run_id, "the task was deleted")
        await self.store.delete_task(task_id)
        return DeletedView(deleted=True, task_id=task_id)

    async def visible(self, who: Principal, limit: int) -> list[TaskRow]:
        """The newest tasks `who` may list (none without `tasks:read`): for listings and completions."""
        if not who.may("tasks:read"):
            return []
        return await self.store.list_tasks(who.sees, None, None, limit, None)

"""Runs as the tools see them: start one now (and wait for it), list, read, cancel, read its log.

A principal sees only the runs of its own tasks (an admin sees all); another principal's run is
"not found". Each call checks the one scope it needs: `run_now` and `cancel_run` need `runs:write`
alone, though they return the run.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import anyio

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.cursor import decode_cursor, page_of
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus, TaskStatus, Trigger
from orchestrator_mcp.engine.events import EventStream, RunEvents
from orchestrator_mcp.engine.scheduler import Engine, new_run
from orchestrator_mcp.errors import Conflict, NotFound
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.service.idempotency import fresh_after, key_row
from orchestrator_mcp.service.row_views import format_log_line, run_view
from orchestrator_mcp.service.tasks import Tasks
from orchestrator_mcp.store.base import Store
from orchestrator_mcp.store.tables import RunRow, TaskRow, log_line
from orchestrator_mcp.views import RunList, RunView

CANCEL_WAIT_SECONDS = 2.0
"""How long `cancel_run` waits for a running run to record its end."""
POLL_SECONDS = 0.25
"""How often a waiter reads a run that this process does not execute."""
CANCEL_POLL_SECONDS = 0.05
"""How often `cancel_run` reads a run another process is cutting short."""

Progress = Callable[[float, float, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ContentBody:
    """A content block read whole: bytes for binary data, else text, and its MIME type."""

    body: bytes | str
    mime_type: str


StepValue = Literal["result", "arguments"]
RunValue = Literal["params", "output"]


class Runs:
    """The runs of the principal's tasks."""

    def __init__(self, store: Store, tasks: Tasks, engine: Engine, clock: Clock, events: RunEvents) -> None:
        self.store = store
        self.tasks = tasks
        self.engine = engine
        self.clock = clock
        self.events = events

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
        """Queue a manual run (`params` merged over the task's); with `wait`, return once it ended or
        after `wait_timeout_seconds`, telling `progress` of each step. A key already used within a day
        returns the run it made (concurrent calls with one key make one run)."""
        who.require("runs:write")
        task = await self.tasks.owned(who, task_id)
        run: RunRow | None = None
        if idempotency_key:
            now = self.clock.now()
            earlier = await self.store.find_idempotent(who.name, "run_now", idempotency_key, fresh_after(now))
            run = await self.store.get_run(earlier) if earlier else None
        if run is None:
            run, queued = await self._queue(who, task, params, idempotency_key)
            if wait:
                await self._wait_for(run.id, wait_timeout_seconds, progress, queued=queued)
        elif wait:
            await self._wait_for(run.id, wait_timeout_seconds, progress)
        return await self._view(run.id)

    async def _queue(
        self, who: Principal, task: TaskRow, params: Mapping[str, Any] | None, key: str | None
    ) -> tuple[RunRow, bool]:
        """Store a new run of `task`, or find the one a concurrent call with `key` stored; True if new."""
        if task.status == TaskStatus.CANCELLED.value:
            raise Conflict(f"task '{task.id}' is cancelled; it can no longer run")
        now = self.clock.now()
        policy = Policy.model_validate(task.policy)
        run = new_run(task, Trigger.MANUAL, now, now, policy, task.params | dict(params or {}))
        with self.engine.reserved_slot() as slot:
            holder = run.id
            if key:
                once = key_row(who, "run_now", key, run.id, now)
                holder, started = await self.store.insert_run_once(run, once, fresh_after(now), slot)
            else:
                started = await self.store.insert_run(run, slot)
            self.engine.start(started)
        if holder != run.id:
            earlier = await self.store.get_run(holder)
            if earlier is None:  # deleted between the insert that lost and this read
                raise Conflict(f"idempotency_key '{key}': the run it made was just deleted; call again")
            return earlier, False
        if not started.runs:
            self.engine.wake(due_times=False)
        return run, True

    async def _wait_for(
        self,
        run_id: str,
        wait_seconds: float,
        progress: Progress | None,
        queued: bool = False,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """Return once the run has ended (or after `wait_seconds`), reporting each step to `progress`.

        A run this process executes announces each step and its end (after storing them): those
        notices are trusted without a read. A run it does not execute (queued, or running in another
        process) is read at the start (not when this call has just `queued` it: it has hardly begun)
        and every `poll_seconds`. Progress is read from a bounded stream: a client slow to take it
        loses intermediate steps, never slows the run."""
        ended = anyio.Event()

        async def relay(stream: EventStream) -> None:
            async for event in stream:
                if progress is None or not event.steps_total:
                    continue
                if event.progress is not None:  # a tool call's own progress, within its step
                    await progress(event.progress, event.steps_total, event.message)
                elif event.steps_done or event.final:
                    await progress(event.steps_done, event.steps_total, event.message)
            ended.set()

        with self.events.stream(run_id) as stream, anyio.move_on_after(wait_seconds):
            async with anyio.create_task_group() as group:
                group.start_soon(relay, stream)
                if queued or not await self._has_ended(run_id):
                    while not ended.is_set():
                        with anyio.move_on_after(poll_seconds):
                            await ended.wait()
                        if ended.is_set() or run_id in self.engine.running:
                            continue
                        if await self._has_ended(run_id):
                            break
                group.cancel_scope.cancel()

    async def _has_ended(self, run_id: str) -> bool:
        """The run is stored as ended (or is gone)."""
        run = await self.store.get_run(run_id)
        return run is None or RunStatus(run.status).is_final

    async def owned(self, who: Principal, run_id: str) -> RunRow:
        """The run, if `who` may see it (no scope is checked: the caller has checked its own).

        Raises:
            NotFound: no such run, or another principal's.
        """
        run = await self.store.get_run(run_id)
        if run is None or not who.owns(run.owner):
            raise NotFound(f"run '{run_id}' not found")
        return run

    async def _view(self, run_id: str) -> RunView:
        """The run as stored now, with its steps (its owner was checked already)."""
        run = await self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"run '{run_id}' not found")
        return run_view(run, await self.store.list_steps(run_id))

    async def get_run(self, who: Principal, run_id: str, include_steps: bool = True) -> RunView:
        who.require("runs:read")
        run = await self.owned(who, run_id)
        return run_view(run, await self.store.list_steps(run_id) if include_steps else None)

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
            await self.tasks.owned(who, task_id)
        after = decode_cursor(cursor) if cursor else None
        rows = await self.store.list_runs(who.sees, task_id, status, since, limit + 1, after)
        page, next_cursor = page_of(rows, limit, lambda run: (run.queued_at, run.id))
        return RunList(runs=[run_view(row, None) for row in page], next_cursor=next_cursor)

    async def cancel_run(self, who: Principal, run_id: str) -> RunView:
        """A queued run ends at once; a running one is cut within about 2 s, in whatever process runs it."""
        who.require("runs:write")
        run = await self.owned(who, run_id)
        now = self.clock.now()
        if run.status == RunStatus.QUEUED.value:
            end = RunEnd(
                RunStatus.CANCELLED, now, RunError(ErrorType.CANCELLED, "cancelled before it started")
            )
            if await self.store.cancel_queued(run_id, end.columns()):
                await self.store.append_logs(
                    [log_line(run_id, now, "INFO", "run cancelled before it started")]
                )
        elif run.status == RunStatus.RUNNING.value:
            if not self.engine.cancel_local(run_id, "cancelled by request"):
                await self.store.update_run(run_id, {"cancel_requested": True})
            await self._wait_for(run_id, CANCEL_WAIT_SECONDS, None, poll_seconds=CANCEL_POLL_SECONDS)
        return await self._view(run_id)

    async def run_log(self, who: Principal, run_id: str) -> str:
        who.require("runs:read")
        await self.owned(who, run_id)
        return "".join(format_log_line(row) + "\n" for row in await self.store.read_logs(run_id))

    async def step_value(self, who: Principal, run_id: str, step_id: str, field: StepValue) -> Any:
        """A step's whole `result` or `arguments`, however large."""
        who.require("runs:read")
        await self.owned(who, run_id)
        for step in await self.store.list_steps(run_id):
            if step.step_id == step_id:
                return step.result if field == "result" else step.arguments
        raise NotFound(f"step '{step_id}' not found in run '{run_id}'")

    async def step_content(self, who: Principal, run_id: str, step_id: str, n: int) -> ContentBody:
        """A step's n-th block that is not text, whole: its bytes (binary) or text, and its MIME type."""
        who.require("runs:read")
        await self.owned(who, run_id)
        found = await self.store.read_step_content(run_id, step_id)
        if found is None:
            raise NotFound(f"step '{step_id}' not found in run '{run_id}'")
        if not 0 <= n < len(found.listing):
            raise NotFound(f"step '{step_id}' of run '{run_id}' has no content block {n}")
        listing, data = found.listing[n], found.data[n] if n < len(found.data) else None
        mime_type = listing.get("mime_type")
        if data is not None:
            return ContentBody(base64.b64decode(data), mime_type or "application/octet-stream")
        if "text" in listing:
            return ContentBody(str(listing["text"]), mime_type or "text/plain")
        return ContentBody(json.dumps(listing, ensure_ascii=False), "application/json")  # a link: its listing

    async def run_value(self, who: Principal, run_id: str, field: RunValue) -> Any:
        """A run's whole `params` or `output`, however large."""
        who.require("runs:read")
        run = await self.owned(who, run_id)
        return run.params if field == "params" else run.output

    async def visible(self, who: Principal, limit: int) -> list[RunRow]:
        """The newest runs `who` may list (none without `runs:read`): for listings and completions."""
        if not who.may("runs:read"):
            return []
        return await self.store.list_runs(who.sees, None, None, None, limit, None)

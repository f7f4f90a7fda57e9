"""The engine loop: fire due tasks, claim queued runs, execute them, keep this instance alive.

The loop sleeps until the earliest of: the next due fire time, the next queued run's `not_before`,
a poll interval (other processes may have changed the store), or a wake-up (a task created or a run
finished in this process, or, on PostgreSQL, a notice that another instance changed the store).
Firing and claiming are single transactions in the store, so any number of processes can share one
database. A store that fails (the database restarting) makes the loop log, back off and retry; it
never ends the engine.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.firing import ActiveRuns, FirePlan, plan_fire
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.retry import backoff_delay
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus, Trigger
from orchestrator_mcp.domain.schedule import Schedule, apply_jitter
from orchestrator_mcp.engine.runner import RunHandle, Runner
from orchestrator_mcp.ids import new_id
from orchestrator_mcp.store.outage import STORE_RETRY, through_outages
from orchestrator_mcp.store.sql import Claim, Slots, SqlStore
from orchestrator_mcp.store.tables import InstanceRow, RunRow, TaskRow

logger = logging.getLogger(__name__)

FIRE_BATCH = 200
FIRE_ROUNDS = 50
CANCEL_POLL_SECONDS = 0.5
RECORD_SECONDS = 5.0
"""After the shutdown grace: how long runs told to stop get to record that they were interrupted."""


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The engine's knobs, as plain values."""

    max_concurrent_runs: int = 8
    poll_interval_seconds: float = 1.0
    heartbeat_seconds: float = 5.0
    instance_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 5.0
    run_retention_days: int = 30
    retention_keep_per_task: int = 100
    housekeeping_seconds: float = 600.0


@dataclass(slots=True)
class Reading:
    """A time read from the store (the next due fire time, the next ready run), trusted until the
    store is said to have changed (`forget`) or until `fresh_until`, when polling reads it again."""

    value: datetime | None = None
    fresh_until: datetime | None = None

    def holds(self, now: datetime) -> bool:
        """True if the reading is trusted and says nothing is due or ready at `now`."""
        fresh = self.fresh_until is not None and now < self.fresh_until
        return fresh and (self.value is None or self.value > now)

    def forget(self) -> None:
        self.fresh_until = None

    async def take(
        self, now: datetime, trust_seconds: float, read: Callable[[], Awaitable[datetime | None]]
    ) -> datetime | None:
        """Read anew. Trust starts before the read, so a `forget()` during it is not lost."""
        self.fresh_until = now + timedelta(seconds=trust_seconds)
        self.value = await read()
        return self.value


@dataclass(slots=True)
class Instance:
    """This process, as other processes see it in the instances table."""

    id: str = field(default_factory=lambda: "inst_" + uuid.uuid4().hex[:16])
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


class Engine:
    """Owns this process's share of the work."""

    def __init__(
        self,
        store: SqlStore,
        runner: Runner,
        clock: Clock,
        settings: EngineSettings,
        instance: Instance | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self.settings = settings
        self.instance = instance or Instance()
        self.started_at = clock.now()
        self.handles: dict[str, RunHandle] = {}
        self.last_loop_at: datetime | None = None
        self._rng = rng or random.Random()
        self._wake = anyio.Event()
        self._check_cancels = anyio.Event()
        self._idle = anyio.Event()
        self._runs: TaskGroup | None = None
        self._stopping = False
        self._stop = anyio.Event()
        self._stopped = anyio.Event()
        self._running = False
        # What the loop last read of the store; a run ending here changes neither.
        self._due = Reading()
        self._ready = Reading()

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register this instance, recover what dead ones left, then loop until `stop()` or cancelled.

        Then it stops claiming, lets running runs finish within the shutdown grace, stops the rest
        (they end `interrupted`) and leaves the instances table.
        """
        self._running = True
        try:
            await self.heartbeat()
            await self.reap()
            try:
                await self.housekeep()
            except Exception:  # retention must never keep the scheduler from starting
                logger.exception("run retention failed at start-up; retrying later")
            async with anyio.create_task_group() as runs:
                self._runs = runs
                try:
                    async with anyio.create_task_group() as loops:
                        loops.start_soon(
                            self._every, self.settings.heartbeat_seconds, self._heartbeat_and_reap
                        )
                        loops.start_soon(self._cancel_watch)
                        loops.start_soon(self.store.listen, self._on_notice)
                        # Retention runs on the injected clock: it is about the scheduler's time.
                        loops.start_soon(
                            self._every, self.settings.housekeeping_seconds, self.housekeep, self.clock.sleep
                        )
                        task_status.started()
                        await self._loop()
                        loops.cancel_scope.cancel()
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._drain()
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.remove_instance(self.instance.id)
            self._stopped.set()

    async def stop(self) -> None:
        """Stop claiming, drain running runs (see `run`) and return once the engine has stopped."""
        self._stop.set()
        self.wake()
        if self._running:
            await self._stopped.wait()

    async def _drain(self) -> None:
        self._stopping = True
        if self.handles:
            with anyio.move_on_after(self.settings.shutdown_grace_seconds):
                await self._idle.wait()
        for handle in list(self.handles.values()):
            handle.cancel("shutdown")
        if self.handles:
            with anyio.move_on_after(RECORD_SECONDS):
                await self._idle.wait()
        for handle in list(self.handles.values()):
            handle.kill()

    def wake(self, *, due_times: bool = True) -> None:
        """Re-check the store now (a task or run changed in this process). `due_times=False` when
        only the queue changed (a run was queued): the last reading of due times still holds."""
        if due_times:
            self._due.forget()
        self._ready.forget()
        self._wake.set()

    def _slot_freed(self) -> None:
        """A run of this process ended: claim again, trusting what was last read of due and ready times.

        Only a run that was already queued can become claimable by a run's end (an exclusive task's
        next run), and the last reading of the queue then says something is ready.
        """
        self._wake.set()

    async def _every(
        self,
        seconds: float,
        action: Callable[[], Awaitable[Any]],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        failures = 0
        name = getattr(action, "__name__", action)
        while True:
            await sleep(seconds)
            try:
                await action()
            except Exception as error:
                failures += 1
                if failures == 1:  # the whole story once; while it keeps failing, one line each
                    logger.exception("engine housekeeping (%s) failed; retrying", name)
                else:
                    logger.warning("engine housekeeping (%s) failed again (%s); retrying", name, error)
            else:
                failures = 0

    # -- the loop ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake = anyio.Event()
            now = self.clock.now()
            self.last_loop_at = now
            try:
                next_due = await self._fire_if_due(now)
                await self.dispatch(now)
                deadline = await self._next_deadline(now, next_due)
            except Exception as error:
                self._due.forget()
                self._ready.forget()
                failures += 1
                delay = backoff_delay(STORE_RETRY, failures)
                if failures == 1:
                    logger.exception("engine loop failed; retrying in %.2fs", delay)
                else:
                    logger.warning("engine loop failed again (%s); retrying in %.2fs", error, delay)
                # Wall-clock time, not the scheduler's clock: it is the store that failed. A wake-up
                # (the listener reconnected, a stop) cuts the wait short.
                with anyio.move_on_after(delay):
                    await self._wake.wait()
                continue
            if failures:
                logger.info("engine loop recovered after %d failed rounds", failures)
                failures = 0
            await self._sleep_until(deadline)

    async def _fire_if_due(self, now: datetime) -> datetime | None:
        """Fire what is due unless the last reading says nothing is; returns the next due time."""
        if self._due.holds(now):
            return self._due.value
        return await self._due.take(now, self.settings.poll_interval_seconds, lambda: self.fire_due(now))

    async def _next_deadline(self, now: datetime, next_due: datetime | None) -> datetime:
        deadline = now + timedelta(seconds=self.settings.poll_interval_seconds)
        candidates = [next_due]
        if len(self.handles) < self.settings.max_concurrent_runs:
            if self._ready.holds(now):
                candidates.append(self._ready.value)
            else:
                poll = self.settings.poll_interval_seconds
                candidates.append(await self._ready.take(now, poll, self.store.next_ready_at))
        return min([deadline, *(moment for moment in candidates if moment is not None)])

    async def _sleep_until(self, deadline: datetime) -> None:
        if self._wake.is_set() or deadline <= self.clock.now():
            await anyio.lowlevel.checkpoint()
            return
        async with anyio.create_task_group() as group:

            async def sleeper() -> None:
                await self.clock.sleep_until(deadline)
                group.cancel_scope.cancel()

            async def waker() -> None:
                await self._wake.wait()
                group.cancel_scope.cancel()

            group.start_soon(sleeper)
            group.start_soon(waker)

    async def fire_due(self, now: datetime) -> datetime | None:
        """Turn every due fire time into runs, and start those this instance has free slots for
        (see `SqlStore.fire_due`); returns the next fire time due after `now`, if any.

        Firing is a write transaction, so it is only begun when a (cheaper) read finds something due:
        the loop goes round after every run that ends, mostly with nothing to fire.
        """
        for _ in range(FIRE_ROUNDS):
            due = await self.store.next_due_at()
            if due is None or due > now:
                return due
            fired = await self.store.fire_due(now, self._plan, self._run_rows, FIRE_BATCH, self._slots())
            self._start(fired.started)
            if fired.queued:
                self._ready.forget()  # runs were queued
        return now  # bounded: more is due, so the loop comes straight back

    def _slots(self) -> Slots | None:
        """The run slots this instance has free, for a claim or a fire to start runs in; None if it
        takes none (stopping, not running, or full)."""
        free = self.settings.max_concurrent_runs - len(self.handles)
        if self._stopping or self._runs is None or free <= 0:
            return None
        return Slots(self.instance.id, free)

    def _plan(self, task: TaskRow, active: ActiveRuns) -> FirePlan:
        """Plan a fire; a task whose stored definition cannot be planned is paused, never retried forever."""
        try:
            assert task.next_run_at is not None and task.anchor is not None
            schedule = Schedule.model_validate(task.schedule)
            policy = Policy.model_validate(task.policy)
            return plan_fire(schedule, task.anchor, policy, task.next_run_at, self.clock.now(), active)
        except Exception as error:
            logger.exception("cannot plan the next fire of task %s; pausing it", task.id)
            return FirePlan(broken=f"{type(error).__name__}: {error}")

    def _run_rows(self, task: TaskRow, plan: FirePlan) -> list[dict[str, Any]]:
        """The rows of a plan's runs, under the policy the plan was made with (parsed once per fire)."""
        policy = plan.policy
        if policy is None:  # a broken definition: nothing to queue
            return []
        jitter = int(task.schedule.get("jitter_seconds") or 0)
        now = self.clock.now()
        rows = []
        for planned in plan.runs:
            fields: dict[str, Any] = {"fire_key": planned.fire_key, "status": planned.status.value}
            if jitter:
                fields["not_before"] = apply_jitter(planned.scheduled_for, jitter, self._rng)
            if planned.skipped is not None:
                fields |= RunEnd(planned.status, now, planned.skipped).columns()
            rows.append(
                run_values(task, Trigger.SCHEDULE, planned.scheduled_for, now, policy, task.params, **fields)
            )
        return rows

    async def dispatch(self, now: datetime) -> None:
        """Claim as many ready runs as there are free slots and start them."""
        slots = self._slots()
        if slots is None or self._ready.holds(now):  # nothing queued is ready, as last read
            return
        self._ready.forget()  # claiming changes the queue
        self._start(await self.store.claim(now, slots.instance_id, slots.free))

    def _start(self, claim: Claim) -> None:
        """Execute runs claimed by this instance (their tasks with them)."""
        if not claim.runs:
            return
        assert self._runs is not None
        self._idle = anyio.Event()
        for run in claim.runs:
            handle = RunHandle(run.id)
            self.handles[run.id] = handle
            # Named: otherwise anyio derives a name from the function for each of a burst's runs.
            self._runs.start_soon(self._execute, run, claim.tasks.get(run.task_id), handle, name=run.id)

    async def _execute(self, run: RunRow, task: TaskRow | None, handle: RunHandle) -> None:
        try:
            # Shielded from the engine's own cancellation: a shutdown stops runs through their
            # handles, so they can record how they ended.
            with handle.shield():
                await self.runner.execute(run, task, handle)
        except Exception as error:
            logger.exception("run %s crashed", run.id)
            message = f"internal error: {type(error).__name__}: {error}"
            with anyio.CancelScope(shield=True):
                await self._record_crash(run.id, message)
        finally:
            self.handles.pop(run.id, None)
            if not self.handles:
                self._idle.set()
            self._slot_freed()

    async def _record_crash(self, run_id: str, message: str) -> None:
        """End a crashed run `failed`, waiting out a database outage.

        Failing that leaves the run `running` under this instance until it stops, when the others
        mark it `interrupted`; it never takes the engine down.
        """

        async def write() -> None:
            now = self.clock.now()
            end = RunEnd(RunStatus.FAILED, now, RunError(ErrorType.INTERNAL, message))
            await self.store.finish_run(run_id, end.columns(), now)

        try:
            await through_outages(write, f"the end of run {run_id}")
        except Exception:
            logger.exception("gave up recording the end of run %s", run_id)

    # -- notices from other instances -------------------------------------------------------

    def _on_notice(self, topic: str) -> None:
        """Another instance changed the store (or the listener reconnected): act on it now."""
        if topic != "task" and topic != "run":
            self._check_cancels.set()
        if topic != "cancel":
            self.wake()

    # -- cancellation -----------------------------------------------------------------------

    def cancel_local(self, run_id: str, reason: str) -> bool:
        """Cancel a run executing in this process; False if it is not here."""
        handle = self.handles.get(run_id)
        if handle is None:
            return False
        handle.cancel(reason)
        return True

    async def _cancel_watch(self) -> None:
        """Check for cancel requests every `CANCEL_POLL_SECONDS`, or at once when a notice says so."""
        while True:
            with anyio.move_on_after(CANCEL_POLL_SECONDS):
                await self._check_cancels.wait()
            self._check_cancels = anyio.Event()
            try:
                await self._watch_cancellations()
            except Exception as error:
                logger.warning("cannot read cancel requests (%s); retrying", error)

    async def _watch_cancellations(self) -> None:
        if not self.handles:
            return
        for run_id in await self.store.cancel_requested(list(self.handles)):
            self.cancel_local(run_id, "cancelled by request")

    # -- housekeeping -----------------------------------------------------------------------

    async def housekeep(self) -> int:
        """Apply run retention: delete ended runs older than the retention period, keeping the newest
        of each task. Returns how many runs were deleted."""
        cutoff = self.clock.now() - timedelta(days=self.settings.run_retention_days)
        deleted = await self.store.delete_expired_runs(cutoff, self.settings.retention_keep_per_task)
        if deleted:
            logger.info("run retention deleted %d runs queued before %s", deleted, cutoff.isoformat())
        return deleted

    # -- instances --------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        now = self.clock.now()
        await self.store.heartbeat(
            InstanceRow(
                id=self.instance.id,
                host=self.instance.host,
                pid=self.instance.pid,
                started_at=self.started_at,
                last_seen_at=now,
            )
        )

    async def _heartbeat_and_reap(self) -> None:
        await self.heartbeat()
        await self.reap()

    async def reap(self) -> list[str]:
        """Mark `interrupted` the running runs of instances that died; returns their run ids."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.settings.instance_timeout_seconds)
        await self.store.remove_dead_instances(cutoff)
        live = await self.store.list_instances(cutoff)
        alive = [self.instance.id, *(row.id for row in live if not self._is_dead_local(row))]
        orphans = await self.store.orphaned_running_runs(alive)
        if not orphans:
            return []
        reason = "interrupted: the process running this run stopped before it ended"
        return await self.store.interrupt_runs(orphans, now, reason)

    def _is_dead_local(self, row: InstanceRow) -> bool:
        """An instance on this host whose process is gone is dead now, not in 30 s."""
        if row.id == self.instance.id or row.host != self.instance.host:
            return False
        try:
            os.kill(row.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def new_run(
    task: TaskRow,
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    policy: Policy,
    params: dict[str, Any],
) -> RunRow:
    """A queued run of `task`."""
    return RunRow(**_queued(task, trigger, scheduled_for, now, policy, params))


def run_values(
    task: TaskRow,
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    policy: Policy,
    params: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """A queued run of `task` as the store inserts it (every column), with `fields` set over it.

    Built without a table model (validating one costs ~80 us, constructing and dumping one ~30 us,
    most of firing a burst of due tasks): the values come from a stored task and the engine, already
    of the column types, and the columns they leave out take the model's defaults.
    """
    return _RUN_DEFAULTS | _queued(task, trigger, scheduled_for, now, policy, params) | fields


_RUN_DEFAULTS: dict[str, Any] = {
    name: info.default for name, info in RunRow.model_fields.items() if not info.is_required()
}
"""Every optional run column with its default (all immutable: None, numbers, booleans): the store
inserts fired runs with executemany, so every row must have every column."""


def _queued(
    task: TaskRow,
    trigger: Trigger,
    scheduled_for: datetime,
    now: datetime,
    policy: Policy,
    params: dict[str, Any],
) -> dict[str, Any]:
    run_id = new_id("run")
    return {
        "id": run_id,
        "task_id": task.id,
        "owner": task.owner,
        "task_title": task.title,
        "trigger": trigger.value,
        "status": RunStatus.QUEUED.value,
        "fire_key": run_id,
        "scheduled_for": scheduled_for,
        "not_before": scheduled_for,
        "queued_at": now,
        "priority": policy.priority,
        "exclusive": policy.exclusive,
        "params": params,
        "steps_total": len(task.pipeline),
    }

"""The engine: one loop that fires due tasks and claims queued runs, and the loops beside it.

The loop sleeps until the earliest of: the next due fire time, the next queued run's `not_before`,
a poll interval (other processes may have changed the store), or a wake-up (a task created or a run
finished in this process, or, on PostgreSQL, a notice that another instance changed the store).
Firing and claiming are single transactions in the store, so any number of processes can share one
database. A store that fails (the database restarting) makes the loop log, back off and retry; it
never ends the engine.

The work is done by parts this module composes: `Firing` (firing.py), `Dispatcher` (dispatch.py:
slots, claims, running runs), `Membership` (instances.py: heartbeats, reaping), `Cancellations`
(cancellation.py) and `Retention` (housekeeping.py). Every wait is on the injected clock (timing.py)
but the store-outage back-off, which is real time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, KeysView
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup, TaskStatus

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.retry import backoff_delay
from orchestrator_mcp.engine.cancellation import Cancellations
from orchestrator_mcp.engine.dispatch import Dispatcher
from orchestrator_mcp.engine.firing import Firing
from orchestrator_mcp.engine.handle import RunHandle
from orchestrator_mcp.engine.housekeeping import Retention
from orchestrator_mcp.engine.instances import Instance, Membership
from orchestrator_mcp.engine.readings import Reading, Readings
from orchestrator_mcp.engine.run_rows import new_run, run_values
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.settings import EngineSettings
from orchestrator_mcp.engine.timing import every, wait_for
from orchestrator_mcp.store.base import Claim, Slots, Store
from orchestrator_mcp.store.outage import STORE_RETRY

__all__ = ["Engine", "EngineSettings", "Instance", "Reading", "Readings", "new_run", "run_values"]

logger = logging.getLogger(__name__)


class Engine:
    """Owns this process's share of the work."""

    def __init__(
        self,
        store: Store,
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
        self.last_loop_at: datetime | None = None
        self.readings = Readings()
        """What the loop last read of the store (see readings.py); a run ending here changes neither."""
        self.dispatcher = Dispatcher(
            store, runner, clock, settings, self.instance.id, self.readings, self.slot_freed
        )
        self.cancellations = Cancellations(store, clock, self.dispatcher.handles)
        self.firing = Firing(
            store,
            clock,
            settings,
            self.readings,
            self.dispatcher,
            self.cancellations.check_soon,
            rng or random.Random(),
        )
        self.membership = Membership(store, clock, settings, self.instance, self.started_at)
        self.retention = Retention(store, clock, settings)
        self._wake = anyio.Event()
        self._stop = anyio.Event()
        self._stopped = anyio.Event()
        self._running = False

    # -- what it holds ------------------------------------------------------------------------

    @property
    def handles(self) -> dict[str, RunHandle]:
        """The runs executing in this process, by id (the dispatcher's own dict: do not change it)."""
        return self.dispatcher.handles

    @property
    def running(self) -> KeysView[str]:
        """The ids of the runs executing in this process: a live, read-only view."""
        return self.dispatcher.handles.keys()

    def reserved_slot(self) -> AbstractContextManager[Slots | None]:
        """A free slot for one run started outside the loop (see `start`), or None if none is free."""
        return self.dispatcher.reserved_slot()

    def start(self, claim: Claim) -> None:
        """Execute runs already marked running on this instance (with their tasks)."""
        self.dispatcher.start(claim)

    @property
    def woken(self) -> bool:
        """True if a wake-up (`wake`, `slot_freed`, a notice) came since the loop last went round."""
        return self._wake.is_set()

    # -- lifecycle ----------------------------------------------------------------------------

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
                with self.executing(runs):
                    try:
                        async with anyio.create_task_group() as loops:
                            self._start_loops(loops)
                            task_status.started()
                            await self._loop()
                            loops.cancel_scope.cancel()
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self.dispatcher.drain()
        finally:
            with anyio.CancelScope(shield=True):
                await self.membership.leave()
            self._stopped.set()

    @contextmanager
    def executing(self, runs: TaskGroup) -> Iterator[None]:
        """Start runs in `runs`, a task group the caller owns, while in this block.

        `run()` does this with its own group; this is for driving the engine by hand (`fire_due`,
        `dispatch`) without its loops, as tests do. Runs started in the block go on after it, in
        `runs`; outside any such block the engine has no free slot, so it fires and queues but
        starts nothing.
        """
        with self.dispatcher.executing(runs):
            yield

    def _start_loops(self, loops: TaskGroup) -> None:
        """The loops beside the main one; every period is of the clock's time."""
        clock, settings = self.clock, self.settings
        loops.start_soon(every, clock, settings.heartbeat_seconds, self._heartbeat_and_reap)
        loops.start_soon(self.cancellations.watch)
        loops.start_soon(self.store.listen, self._on_notice)
        loops.start_soon(every, clock, settings.housekeeping_seconds, self.housekeep)

    async def stop(self) -> None:
        """Stop claiming, drain running runs (see `run`) and return once the engine has stopped."""
        self._stop.set()
        self.wake()
        if self._running:
            await self._stopped.wait()

    def wake(self, *, due_times: bool = True) -> None:
        """Re-check the store now (a task or run changed in this process). `due_times=False` when
        only the queue changed (a run was queued): the last reading of due times still holds."""
        self.readings.forget(due_times=due_times)
        self._wake.set()

    def slot_freed(self) -> None:
        """A run of this process ended: claim again, trusting what was last read of due and ready times.

        Only a run that was already queued can become claimable by a run's end (an exclusive task's
        next run), and the last reading of the queue then says something is ready.
        """
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake = anyio.Event()
            now = self.clock.now()
            self.last_loop_at = now
            try:
                next_due = await self.fire_if_due(now)
                await self.dispatch(now)
                deadline = await self.next_deadline(now, next_due)
            except Exception as error:
                self.readings.forget()
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
            await wait_for(self.clock, self._wake, deadline)

    async def fire_if_due(self, now: datetime) -> datetime | None:
        """One round's fire: fire what is due unless the last reading says nothing is; returns the
        next due time."""
        return await self.firing.fire_if_due(now)

    async def next_deadline(self, now: datetime, next_due: datetime | None) -> datetime:
        """When the loop goes round next unless woken: the next due time, the next ready run (if a
        slot is free; read from the store unless the last reading holds), or a poll interval."""
        deadline = now + timedelta(seconds=self.settings.poll_interval_seconds)
        candidates = [next_due, await self.dispatcher.next_ready(now)]
        return min([deadline, *(moment for moment in candidates if moment is not None)])

    async def fire_due(self, now: datetime) -> datetime | None:
        """Fire every due task and start what the free slots allow (see `Firing.fire_due`)."""
        return await self.firing.fire_due(now)

    async def dispatch(self, now: datetime) -> None:
        """Claim as many ready runs as there are free slots and start them."""
        await self.dispatcher.dispatch(now)

    # -- beside the loop ----------------------------------------------------------------------

    def _on_notice(self, topic: str) -> None:
        """Another instance changed the store (or the listener reconnected): act on it now."""
        if topic != "task" and topic != "run":
            self.cancellations.check_soon()
        if topic != "cancel":
            self.wake()

    def cancel_local(self, run_id: str, reason: str) -> bool:
        """Cancel a run executing in this process; False if it is not here."""
        return self.cancellations.cancel_local(run_id, reason)

    async def housekeep(self) -> int:
        """Apply run retention now; returns how many runs were deleted (see `Retention`)."""
        return await self.retention.housekeep()

    async def heartbeat(self) -> None:
        """Say this instance is alive."""
        await self.membership.heartbeat()

    async def reap(self) -> list[str]:
        """Mark `interrupted` the running runs of instances that died; returns their run ids."""
        return await self.membership.reap()

    async def _heartbeat_and_reap(self) -> None:
        await self.membership.heartbeat_and_reap()

"""This instance's run slots: claiming queued runs, starting runs (claimed or fired), tracking them
until they end, and draining them at shutdown."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import anyio
from anyio.abc import TaskGroup

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus
from orchestrator_mcp.engine.handle import RunHandle
from orchestrator_mcp.engine.readings import Readings
from orchestrator_mcp.engine.runner import Runner
from orchestrator_mcp.engine.settings import EngineSettings
from orchestrator_mcp.engine.timing import wait_seconds
from orchestrator_mcp.store.base import Claim, RunQueue, Slots
from orchestrator_mcp.store.outage import through_outages
from orchestrator_mcp.store.tables import RunRow, TaskRow

logger = logging.getLogger(__name__)

RECORD_SECONDS = 5.0
"""After the shutdown grace: how long runs told to stop get to record that they were interrupted."""


class Dispatcher:
    """Starts runs in the task group it is given (`executing`), one per free slot, and keeps their
    handles (by run id) until they end; `slot_freed` is called after each end."""

    def __init__(
        self,
        store: RunQueue,
        runner: Runner,
        clock: Clock,
        settings: EngineSettings,
        instance_id: str,
        readings: Readings,
        slot_freed: Callable[[], None],
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self.settings = settings
        self.instance_id = instance_id
        self.readings = readings
        self.handles: dict[str, RunHandle] = {}
        self._slot_freed = slot_freed
        self._runs: TaskGroup | None = None
        self._stopping = False
        self._idle = anyio.Event()
        self._reserved = 0

    @contextmanager
    def executing(self, runs: TaskGroup) -> Iterator[None]:
        """Start runs in `runs` while in this block (outside it, no slot is free)."""
        self._runs = runs
        try:
            yield
        finally:
            self._runs = None

    def slots(self) -> Slots | None:
        """The run slots this instance has free, for a claim or a fire to start runs in; None if it
        takes none (stopping, not executing, or full)."""
        free = self.settings.max_concurrent_runs - len(self.handles) - self._reserved
        if self._stopping or self._runs is None or free <= 0:
            return None
        return Slots(self.instance_id, free)

    @contextmanager
    def reserved_slot(self) -> Iterator[Slots | None]:
        """One free slot, kept from the loop's claims and fires while a run is inserted outside the
        loop to start in it (`start` before leaving the block); None if none is free."""
        if self.slots() is None:
            yield None
            return
        self._reserved += 1
        try:
            yield Slots(self.instance_id, 1)
        finally:
            self._reserved -= 1

    async def dispatch(self, now: datetime) -> None:
        """Claim as many ready runs as there are free slots and start them."""
        slots = self.slots()
        if slots is None or self.readings.ready.holds(now):  # nothing queued is ready, as last read
            return
        self.readings.ready.forget()  # claiming changes the queue
        self.start(await self.store.claim(now, slots.instance_id, slots.free))

    async def next_ready(self, now: datetime) -> datetime | None:
        """When the next queued run may start, if a slot is free for it (None: full, or none queued)."""
        if len(self.handles) >= self.settings.max_concurrent_runs:
            return None
        ready = self.readings.ready
        if ready.holds(now):
            return ready.value
        return await ready.take(now, self.settings.poll_interval_seconds, self.store.next_ready_at)

    def start(self, claim: Claim) -> None:
        """Execute runs claimed by this instance (their tasks with them).

        A run inserted running by `run_now` may arrive after the engine stopped executing (a
        shutdown during its insert): it is left as stored, and marked `interrupted` once this
        instance is gone, as any run of a stopped process."""
        if not claim.runs:
            return
        if self._runs is None:
            logger.warning(
                "not executing: runs %s are left to be marked interrupted", [r.id for r in claim.runs]
            )
            return
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

    async def drain(self) -> None:
        """Take no more runs; let running ones finish within the shutdown grace, then stop them
        (they record that they were interrupted, for at most `RECORD_SECONDS`), then cut the rest.
        Both waits are on the clock."""
        self._stopping = True
        if self.handles:
            await wait_seconds(self.clock, self._idle, self.settings.shutdown_grace_seconds)
        for handle in list(self.handles.values()):
            handle.cancel("shutdown")
        if self.handles:
            await wait_seconds(self.clock, self._idle, RECORD_SECONDS)
        for handle in list(self.handles.values()):
            handle.kill()

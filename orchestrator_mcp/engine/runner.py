"""Execute one run: steps in order, conditions, templates, retries, timeouts, cancellation.

Every state change (step records, log lines, the run row), redacted of secrets, is stored before
the run does anything outside itself: before each tool call, before a retry's wait, before opening
a tool server's session, and when the run ends. What happens in between (a step's end, the next
step's condition and arguments) is pure computation, so it goes in the same write as the next
call's "calling" record: one write per step, and a crash still loses at most the step in hand. The
run's end is stored in the same write as its last records (and its task's counters with it).
Notices about the run (progress, subscriptions) are sent only once what they tell is stored.

The `Runner` is shared by every run of the process; one run's state is an `Execution`
(execution.py), its records a `Recorder` (records.py), what its expressions read a `RunContext`
(context.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import anyio

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.grants import EVERYTHING, GrantSource
from orchestrator_mcp.domain.redaction import Redactor
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus
from orchestrator_mcp.engine.events import RunEvent, RunEvents
from orchestrator_mcp.engine.execution import Execution, StepFailed
from orchestrator_mcp.engine.handle import RunHandle
from orchestrator_mcp.engine.plans import PlanCache
from orchestrator_mcp.engine.records import StepRecord
from orchestrator_mcp.store.base import RunJournal
from orchestrator_mcp.store.outage import through_outages
from orchestrator_mcp.store.tables import RunRow, TaskRow, log_line

__all__ = ["RunHandle", "RunObserver", "Runner", "StepFailed", "StepRecord"]


class RunObserver(Protocol):
    """Told when a run starts executing (for metrics)."""

    def run_started(self, lateness_seconds: float) -> None: ...


class Runner:
    """Runs pipelines; shared by every run of the process."""

    def __init__(
        self,
        store: RunJournal,
        catalog: Catalog,
        clock: Clock,
        secrets: Mapping[str, str],
        events: RunEvents,
        observer: RunObserver | None = None,
        grants: GrantSource | None = None,
    ) -> None:
        """`grants` says what each owner may use; without it every owner has every grant (one user,
        as over stdio)."""
        self.observer = observer
        self.grants = grants
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.secrets = dict(secrets)
        self.redactor = Redactor(self.secrets.values())
        self.events = events
        self.plans = PlanCache()

    async def execute(self, run: RunRow, task: TaskRow | None, handle: RunHandle) -> None:
        """Execute a claimed run of `task` (None: deleted since) to its end and store the outcome.

        Never raises for a run's failure.
        """
        if task is None:
            await self._finish_without_steps(
                run, RunStatus.CANCELLED, ErrorType.CANCELLED, "the task was deleted"
            )
            return
        try:
            plan = self.plans.get(task)
        except ValueError as error:  # a stored pipeline that no longer parses
            await self._finish_without_steps(run, RunStatus.FAILED, ErrorType.INVALID_PIPELINE, str(error))
            return
        grants = EVERYTHING if self.grants is None else await self.grants.grants_of(task.owner)
        denied = sorted(
            name for names in plan.secrets.values() for name in names if not grants.allows_secret(name)
        )
        if denied:
            message = (
                f"secret {', '.join(repr(name) for name in denied)} is not granted to principal "
                f"'{task.owner}' (grant it with the scope secret:{denied[0]})"
            )
            await self._finish_without_steps(run, RunStatus.FAILED, ErrorType.PERMISSION_DENIED, message)
            return
        await Execution(self, run, task, plan, handle, grants).run()

    async def _finish_without_steps(
        self, run: RunRow, status: RunStatus, kind: ErrorType, message: str
    ) -> None:
        """End a run that starts no step: its end and its one log line are one write, waited through
        a database restart like every other write of a run."""
        now = self.clock.now()
        end = RunEnd(status, now, RunError(kind, message), duration_ms=0).columns()

        async def write() -> None:
            await self.store.record_progress(run.id, [], [log_line(run.id, now, "ERROR", message)], None, end)

        with anyio.CancelScope(shield=True):
            await through_outages(write, f"the end of run {run.id}")
        self.events.publish(RunEvent(run.id, run.owner, message, 0, 0, final=True))

"""Execute one run: steps in order, conditions, templates, retries, timeouts, cancellation.

Every state change (step records, log lines, the run row), redacted of secrets, is stored before
the run does anything outside itself: before each tool call, before a retry's wait, before opening
a tool server's session, and when the run ends. What happens in between (a step's end, the next
step's condition and arguments) is pure computation, so it goes in the same write as the next
call's "calling" record: one write per step, and a crash still loses at most the step in hand. The
run's end is stored in the same write as its last records (and its task's counters with it).
Notices about the run (progress, subscriptions) are sent only once what they tell is stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import anyio

from orchestrator_mcp.catalog import Catalog, ToolCallError
from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.expressions import ExpressionError, evaluate, is_truthy
from orchestrator_mcp.domain.pipeline import Step, check_arguments
from orchestrator_mcp.domain.problems import join_path
from orchestrator_mcp.domain.redaction import Redactor
from orchestrator_mcp.domain.retry import FailureKind, backoff_delay, should_retry
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus, StepStatus
from orchestrator_mcp.domain.templating import TemplateError, render
from orchestrator_mcp.engine.events import RunEvent, RunEvents
from orchestrator_mcp.engine.plans import Plan, PlanCache
from orchestrator_mcp.store.outage import through_outages
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import LogValues, RunRow, StepValues, TaskRow, log_line
from orchestrator_mcp.timefmt import rfc3339

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Told when a run starts executing (for metrics)."""

    def run_started(self, lateness_seconds: float) -> None: ...


@dataclass(slots=True)
class RunHandle:
    """A run executing in this process; `cancel()` cuts it wherever it is."""

    run_id: str
    reason: str | None = None
    _scope: anyio.CancelScope | None = None
    _shield: anyio.CancelScope | None = None

    def shield(self) -> anyio.CancelScope:
        """The scope the whole execution runs in, deaf to outside cancellation until `kill()`."""
        self._shield = anyio.CancelScope(shield=True)
        return self._shield

    def kill(self) -> None:
        """Cut the execution now, recorded or not (after a shutdown grace ran out)."""
        if self._shield is not None:
            self._shield.cancel()

    def scope(self) -> anyio.CancelScope:
        """A new scope for the next phase of the run, cancelled at once if the run already is."""
        self._scope = anyio.CancelScope()
        if self.reason is not None:
            self._scope.cancel()
        return self._scope

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self._scope is not None:
            self._scope.cancel()


class StepFailed(Exception):
    """A step ended in failure; `kind` is the error type stored on the run."""

    def __init__(self, kind: ErrorType, message: str, status: StepStatus = StepStatus.FAILED) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


@dataclass(slots=True)
class StepRecord:
    """A step's record while its run builds it; stored as a `StepRow` (see `values`)."""

    run_id: str
    seq: int
    step_id: str
    uses: str
    phase: str
    status: str = StepStatus.PENDING.value
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    arguments: Any = None
    result: Any = None
    result_size: int = 0
    error: str | None = None
    skip_reason: str | None = None

    def values(self) -> StepValues:
        """The record as the store takes it: its columns, of the column types already."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "step_id": self.step_id,
            "uses": self.uses,
            "phase": self.phase,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "arguments": self.arguments,
            "result": self.result,
            "result_size": self.result_size,
            "error": self.error,
            "skip_reason": self.skip_reason,
        }


class Runner:
    """Runs pipelines; shared by every run of the process."""

    def __init__(
        self,
        store: SqlStore,
        catalog: Catalog,
        clock: Clock,
        secrets: Mapping[str, str],
        events: RunEvents,
        observer: RunObserver | None = None,
    ) -> None:
        self.observer = observer
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
        await _Execution(self, run, task, plan, handle).run()

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


class _Execution:
    """The state of one run while it executes."""

    def __init__(self, runner: Runner, run: RunRow, task: TaskRow, plan: Plan, handle: RunHandle) -> None:
        self.runner = runner
        self.run_row = run
        self.handle = handle
        self.plan = plan
        self.policy = plan.policy
        self.steps = plan.steps
        self.handlers = plan.handlers
        self.output = task.output
        self.records: dict[str, StepRecord] = {}
        self.done = 0
        # What changed since the last write, and the notices waiting for it.
        self.dirty: dict[int, StepRecord] = {}
        self.logs: list[LogValues] = []
        self.run_values: dict[str, Any] = {}
        self.notices: list[RunEvent] = []
        self.current: StepRecord | None = None
        self.context: dict[str, Any] = {
            "params": run.params,
            "vars": {},
            "steps": {},
            "run": {
                "id": run.id,
                "task_id": run.task_id,
                "trigger": run.trigger,
                "scheduled_for": rfc3339(run.scheduled_for),
                "attempt": run.attempt,
            },
            "task": {"id": task.id, "title": task.title},
            "secrets": runner.secrets,
        }

    # -- bookkeeping ------------------------------------------------------------------------

    def log(self, level: str, message: str, step_id: str | None = None) -> None:
        text = self.runner.redactor.redact_text(message)
        self.logs.append(log_line(self.run_row.id, self.runner.clock.now(), level, text, step_id))

    def changed(self, *records: StepRecord, **run_values: Any) -> None:
        """Note records and run fields to store with the next write."""
        for record in records:
            self.dirty[record.seq] = record
        self.run_values.update(run_values)

    async def flush(self, end: dict[str, Any] | None = None) -> None:
        """Store everything noted since the last write, in one write, then send the notices it allows.

        With `end` (the run's final fields), that write also ends the run."""
        rows = [record.values() for record in self.dirty.values()]
        logs, run_values = self.logs, self.run_values or None
        self.dirty, self.logs, self.run_values = {}, [], {}
        if rows or logs or run_values or end:

            async def write() -> None:
                await self.runner.store.record_progress(self.run_row.id, rows, logs, run_values, end)

            # Never cut half-written, and waited through a database restart: the run goes on after it.
            with anyio.CancelScope(shield=True):
                await through_outages(write, f"the records of run {self.run_row.id}")
        notices, self.notices = self.notices, []
        for notice in notices:
            self.runner.events.publish(notice)

    def new_record(self, step: Step, seq: int, phase: str) -> StepRecord:
        record = StepRecord(run_id=self.run_row.id, seq=seq, step_id=step.id, uses=step.uses, phase=phase)
        self.records[step.id] = record
        return record

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> None:
        # started_at is when execution really begins, not when the run was claimed: a run that
        # waited for a slot must show that wait as lateness.
        started = self.runner.clock.now()
        if self.runner.observer is not None:
            self.runner.observer.run_started((started - self.run_row.scheduled_for).total_seconds())
        pending = [self.new_record(step, seq, "main") for seq, step in enumerate(self.steps)]
        self.log(
            "INFO",
            f"run started ({self.run_row.trigger}, scheduled for {rfc3339(self.run_row.scheduled_for)})",
        )
        self.changed(*pending, steps_total=len(self.steps), started_at=started)
        self.tell("run started")

        status, error = RunStatus.SUCCEEDED, None
        limit = anyio.current_time() + self.policy.timeout_seconds  # move_on_after, without its wrapper
        with anyio.CancelScope(deadline=limit) as deadline, self.handle.scope():
            status, error = await self.run_steps(self.steps, "main")
        if self.handle.reason is not None:
            status = RunStatus.INTERRUPTED if self.handle.reason == "shutdown" else RunStatus.CANCELLED
            error = self.stop_current(status, ErrorType.CANCELLED, self.handle.reason or "cancelled")
        elif deadline.cancelled_caught:
            status = RunStatus.TIMED_OUT
            error = self.stop_current(
                status,
                ErrorType.RUN_TIMEOUT,
                f"the run exceeded its time limit of {self.policy.timeout_seconds}s",
            )
        self.skip_rest(error)

        if status in (RunStatus.FAILED, RunStatus.TIMED_OUT) and self.handlers:
            self.context["error"] = None if error is None else error.as_json()
            self.log("WARNING", f"running {len(self.handlers)} on_failure step(s)")
            handlers = [
                self.new_record(step, len(self.steps) + i, "on_failure")
                for i, step in enumerate(self.handlers)
            ]
            self.changed(*handlers)
            with self.handle.scope():
                await self.run_steps(self.handlers, "on_failure")
            if self.handle.reason is not None:
                self.stop_current(RunStatus.CANCELLED, ErrorType.CANCELLED, self.handle.reason or "cancelled")
            self.skip_rest(error)

        output = None
        if status is RunStatus.SUCCEEDED:
            output, error = self.evaluate_output()
            if error is not None:
                status = RunStatus.FAILED
        await self.finish(status, error, output, started)

    def stop_current(self, status: RunStatus, kind: ErrorType, message: str) -> RunError:
        """Mark the step in flight (if any) as cut by cancellation or the run's time limit."""
        record = self.current
        step_id = None
        if record is not None:
            step_id = record.step_id
            record.status = (
                StepStatus.TIMED_OUT if status is RunStatus.TIMED_OUT else StepStatus.CANCELLED
            ).value
            record.error = message
            self.end_record(record)
            self.context["steps"][record.step_id] = {
                "status": record.status,
                "result": None,
                "error": message,
            }
        self.log("ERROR", message, step_id)
        return RunError(kind, message, step_id)

    def skip_rest(self, error: RunError | None) -> None:
        reason = "not started: " + (error.message if error else "the run ended")
        rest = [record for record in self.records.values() if record.status == StepStatus.PENDING.value]
        for record in rest:
            record.status, record.skip_reason = StepStatus.SKIPPED.value, reason[:500]
        touched = rest + ([self.current] if self.current is not None else [])
        self.current = None
        self.changed(*touched)

    async def run_steps(self, steps: tuple[Step, ...], phase: str) -> tuple[RunStatus, RunError | None]:
        for index, step in enumerate(steps):
            record = self.records[step.id]
            try:
                await self.run_step(step, record, join_path("pipeline" if phase == "main" else phase, index))
            except StepFailed as failure:
                record.status, record.error = failure.status.value, failure.message
                self.end_record(record)
                self.context["steps"][step.id] = {
                    "status": record.status,
                    "result": None,
                    "error": failure.message,
                }
                self.log("ERROR", f"failed ({failure.kind.value}): {failure.message}", step.id)
                self.current = None
                self.changed(record, steps_completed=self.done)
                self.tell(f"step {step.id} {record.status}: {failure.message}")
                if not step.continue_on_error:
                    return RunStatus.FAILED, RunError(failure.kind, failure.message, step.id)
                self.log("WARNING", "continue_on_error: going on", step.id)
        return RunStatus.SUCCEEDED, None

    async def run_step(self, step: Step, record: StepRecord, path: str) -> None:
        clock = self.runner.clock
        self.context["now"] = rfc3339(clock.now())
        if step.if_ is not None and not self.condition(step):
            record.status = StepStatus.SKIPPED.value
            record.skip_reason = f"condition `{step.if_}` was false"
            self.context["steps"][step.id] = {"status": record.status, "result": None, "error": None}
            self.log("INFO", f"skipped: {record.skip_reason}", step.id)
            self.done += 1
            self.changed(record, steps_completed=self.done)
            self.tell(f"step {step.id} skipped")
            return
        record.status, record.started_at = StepStatus.RUNNING.value, clock.now()
        self.current = record
        arguments = await self.arguments(step, path)
        record.arguments = self.runner.redactor.redact(arguments)
        self.log("INFO", f"calling {step.uses}", step.id)
        self.changed(record)
        await self.flush()
        value = await self.call(step, record, arguments)
        stored = self.runner.redactor.redact(value)
        record.status, record.result = StepStatus.SUCCEEDED.value, stored
        record.result_size = len(json.dumps(stored, ensure_ascii=False, default=str))
        self.end_record(record)
        self.context["steps"][step.id] = {"status": record.status, "result": value, "error": None}
        if step.save_as:
            self.context["vars"][step.save_as] = value
        self.done += 1
        self.current = None
        self.log("INFO", f"succeeded after {record.attempts} attempt(s) in {record.duration_ms} ms", step.id)
        self.changed(record, steps_completed=self.done)
        self.tell(f"step {step.id} succeeded")

    def condition(self, step: Step) -> bool:
        assert step.if_ is not None
        try:
            return is_truthy(evaluate(step.if_, self.context))
        except ExpressionError as error:
            raise StepFailed(ErrorType.EXPRESSION_ERROR, f"if: {error}") from error

    async def arguments(self, step: Step, path: str) -> dict[str, Any]:
        missing = sorted(name for name in self.plan.secrets[step.id] if name not in self.runner.secrets)
        if missing:
            names = ", ".join(f"{name} (environment variable ORCH_SECRET_{name})" for name in missing)
            raise StepFailed(ErrorType.MISSING_SECRET, f"secret not set: {names}")
        try:
            arguments = render(step.with_, self.context, join_path(path, "with"))
        except TemplateError as error:
            raise StepFailed(ErrorType.TEMPLATE_ERROR, str(error)) from error
        catalog = self.runner.catalog
        tool = catalog.tool(step.uses)
        if tool is None:  # not known yet: open its server's session, or re-read its tool list
            await self.flush()
            await catalog.prepare([step.uses])
            tool = catalog.tool(step.uses)
        if tool is not None:
            problems = check_arguments(arguments, tool.input_schema, join_path(path, "with"))
            if problems:
                text = "; ".join(str(problem) for problem in problems)
                raise StepFailed(ErrorType.INVALID_ARGUMENTS, self.runner.redactor.redact_text(text))
        return dict(arguments)

    async def call(self, step: Step, record: StepRecord, arguments: dict[str, Any]) -> Any:
        retry = step.retry or self.policy.retry
        timeout = float(step.timeout_seconds or self.policy.step_timeout_seconds)
        while True:
            record.attempts += 1
            try:
                return await self.runner.catalog.call(step.uses, arguments, timeout)
            except ToolCallError as error:
                message = self.runner.redactor.redact_text(error.message)
                if not should_retry(retry, record.attempts, error.kind):
                    status = StepStatus.TIMED_OUT if error.kind is FailureKind.TIMEOUT else StepStatus.FAILED
                    raise StepFailed(ErrorType(error.kind.value), message, status) from None
                delay = backoff_delay(retry, record.attempts)
                self.log(
                    "WARNING",
                    f"attempt {record.attempts} failed ({error.kind.value}): {message}; "
                    f"retrying in {delay:g}s",
                    step.id,
                )
                self.changed(record)
                await self.flush()
                await self.runner.clock.sleep(delay)

    def end_record(self, record: StepRecord) -> None:
        record.finished_at = self.runner.clock.now()
        if record.started_at is not None:
            record.duration_ms = _ms(record.finished_at, record.started_at)

    def evaluate_output(self) -> tuple[Any, RunError | None]:
        if self.output is None:
            return self.runner.redactor.redact(self.context["vars"]), None
        try:
            return self.runner.redactor.redact(evaluate(self.output, self.context)), None
        except ExpressionError as error:
            message = f"output: {error}"
            self.log("ERROR", message)
            return None, RunError(ErrorType.OUTPUT_ERROR, message)

    async def finish(self, status: RunStatus, error: RunError | None, output: Any, started: datetime) -> None:
        now = self.runner.clock.now()
        if error is not None:
            error = RunError(error.type, self.runner.redactor.redact_text(error.message), error.step_id)
        self.log("INFO" if status is RunStatus.SUCCEEDED else "ERROR", f"run {status.value}")
        end = RunEnd(status, now, error, _ms(now, started), self.done, output)
        await self.flush(end.columns())  # the last records and the run's end: one write
        self.runner.events.publish(self.event(f"run {status.value}", final=True))

    def tell(self, message: str) -> None:
        """Send a notice about the run once what it tells is stored (after the next write)."""
        self.notices.append(self.event(message))

    def event(self, message: str, final: bool = False) -> RunEvent:
        return RunEvent(self.run_row.id, self.run_row.owner, message, self.done, len(self.steps), final)


def _ms(end: datetime, start: datetime) -> int:
    return max(0, int((end - start).total_seconds() * 1000))

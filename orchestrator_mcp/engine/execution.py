"""One run executing: its steps in order, their conditions, arguments, retries and records, its
time limit, its cancellation, its `on_failure` steps and its end.

Every state change is noted on the run's `Recorder` and stored with the next write (see runner.py
for when writes happen); what expressions read is the run's `RunContext`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from orchestrator_mcp.catalog import ToolCallError
from orchestrator_mcp.catalog.results import Block, ToolOutput
from orchestrator_mcp.domain.expressions import ExpressionError, evaluate, is_truthy, sharing_budget
from orchestrator_mcp.domain.grants import Grants
from orchestrator_mcp.domain.pipeline import Step, check_arguments
from orchestrator_mcp.domain.problems import join_path
from orchestrator_mcp.domain.retry import FailureKind, backoff_delay, should_retry
from orchestrator_mcp.domain.run import ErrorType, RunEnd, RunError, RunStatus, StepStatus
from orchestrator_mcp.domain.templating import TemplateError, render
from orchestrator_mcp.engine.context import RunContext
from orchestrator_mcp.engine.handle import RunHandle
from orchestrator_mcp.engine.plans import Plan
from orchestrator_mcp.engine.records import Recorder, StepRecord, ms_between
from orchestrator_mcp.engine.step_watch import StepWatch
from orchestrator_mcp.offload import off_loop
from orchestrator_mcp.store.tables import RunRow, TaskRow
from orchestrator_mcp.timefmt import rfc3339
from tool_catalog.trust import trusted_caller

if TYPE_CHECKING:
    from orchestrator_mcp.engine.runner import Runner


class StepFailed(Exception):
    """A step ended in failure; `kind` is the error type stored on the run."""

    def __init__(self, kind: ErrorType, message: str, status: StepStatus = StepStatus.FAILED) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


class Execution:
    """The state of one run while it executes."""

    def __init__(
        self, runner: Runner, run: RunRow, task: TaskRow, plan: Plan, handle: RunHandle, grants: Grants
    ) -> None:
        self.runner = runner
        self.grants = grants
        """What the task's owner was granted when the run started."""
        self.run_row = run
        self.handle = handle
        self.plan = plan
        self.policy = plan.policy
        self.steps = plan.steps
        self.handlers = plan.handlers
        self.output = task.output
        self.recorder = Recorder(
            run, len(plan.steps), runner.store, runner.clock, runner.redactor, runner.events
        )
        self.context = RunContext.of(run, task)
        self.current: StepRecord | None = None
        """The step in flight, if any (what a cancellation or the time limit cuts)."""

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> None:
        clock, recorder = self.runner.clock, self.recorder
        # started_at is when execution really begins, not when the run was claimed: a run that
        # waited for a slot must show that wait as lateness.
        started = clock.now()
        if self.runner.observer is not None:
            self.runner.observer.run_started((started - self.run_row.scheduled_for).total_seconds())
        pending = [recorder.new_record(step, seq, "main") for seq, step in enumerate(self.steps)]
        recorder.log(
            "INFO",
            f"run started ({self.run_row.trigger}, scheduled for {rfc3339(self.run_row.scheduled_for)})",
        )
        recorder.changed(*pending, steps_total=len(self.steps), started_at=started)
        recorder.tell("run started")

        status, error = RunStatus.SUCCEEDED, None
        # The whole-run limit is on the clock: a manual clock moved past it times the run out.
        limit = clock.cancel_at(started + timedelta(seconds=self.policy.timeout_seconds))
        with limit, self.handle.scope():
            status, error = await self.run_steps(self.steps, "main")
        if self.handle.reason is not None:
            status = RunStatus.INTERRUPTED if self.handle.reason == "shutdown" else RunStatus.CANCELLED
            error = self.stop_current(status, ErrorType.CANCELLED, self.handle.reason or "cancelled")
        elif limit.cancelled_caught:
            status = RunStatus.TIMED_OUT
            error = self.stop_current(
                status,
                ErrorType.RUN_TIMEOUT,
                f"the run exceeded its time limit of {self.policy.timeout_seconds}s",
            )
        self.skip_rest(error)

        if status in (RunStatus.FAILED, RunStatus.TIMED_OUT) and self.handlers:
            self.context.set_error(error)
            recorder.log("WARNING", f"running {len(self.handlers)} on_failure step(s)")
            handlers = [
                recorder.new_record(step, len(self.steps) + i, "on_failure")
                for i, step in enumerate(self.handlers)
            ]
            recorder.changed(*handlers)
            with self.handle.scope():
                await self.run_steps(self.handlers, "on_failure")
            if self.handle.reason is not None:
                self.stop_current(RunStatus.CANCELLED, ErrorType.CANCELLED, self.handle.reason or "cancelled")
            self.skip_rest(error)

        output = None
        if status is RunStatus.SUCCEEDED:
            output, error = await self.evaluate_output()
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
            record.end(self.runner.clock.now())
            self.context.step_ended(record.step_id, record.status, error=message)
        self.recorder.log("ERROR", message, step_id)
        return RunError(kind, message, step_id)

    def skip_rest(self, error: RunError | None) -> None:
        reason = "not started: " + (error.message if error else "the run ended")
        records = self.recorder.records.values()
        rest = [record for record in records if record.status == StepStatus.PENDING.value]
        for record in rest:
            record.status, record.skip_reason = StepStatus.SKIPPED.value, reason[:500]
        touched = rest + ([self.current] if self.current is not None else [])
        self.current = None
        self.recorder.changed(*touched)

    # -- steps ------------------------------------------------------------------------------

    async def run_steps(self, steps: tuple[Step, ...], phase: str) -> tuple[RunStatus, RunError | None]:
        recorder = self.recorder
        for index, step in enumerate(steps):
            record = recorder.records[step.id]
            try:
                await self.run_step(step, record, join_path("pipeline" if phase == "main" else phase, index))
            except StepFailed as failure:
                # An error may quote a value (a template's, a tool's): never a secret's.
                message = self.runner.redactor.redact_text(failure.message)
                record.status, record.error = failure.status.value, message
                record.end(self.runner.clock.now())
                self.context.step_ended(step.id, record.status, error=message)
                recorder.log("ERROR", f"failed ({failure.kind.value}): {message}", step.id)
                self.current = None
                recorder.changed(record, steps_completed=recorder.done)
                recorder.tell(f"step {step.id} {record.status}: {message}")
                if not step.continue_on_error:
                    return RunStatus.FAILED, RunError(failure.kind, message, step.id)
                recorder.log("WARNING", "continue_on_error: going on", step.id)
        return RunStatus.SUCCEEDED, None

    async def run_step(self, step: Step, record: StepRecord, path: str) -> None:
        clock, recorder, context = self.runner.clock, self.recorder, self.context
        context.step_began(clock.now())
        if step.if_ is not None and not await self.condition(step):
            record.status = StepStatus.SKIPPED.value
            record.skip_reason = f"condition `{step.if_}` was false"
            context.step_ended(step.id, record.status)
            recorder.log("INFO", f"skipped: {record.skip_reason}", step.id)
            recorder.done += 1
            recorder.changed(record, steps_completed=recorder.done)
            recorder.tell(f"step {step.id} skipped")
            return
        record.status, record.started_at = StepStatus.RUNNING.value, clock.now()
        self.current = record
        arguments = await self.arguments(step, path)
        record.arguments = self.runner.redactor.redact(arguments)
        recorder.log("INFO", f"calling {step.uses}", step.id)
        recorder.changed(record)
        await recorder.flush()
        # Later steps see the result as stored, secrets hidden: a tool that echoes a secret back
        # must not hand its value to expressions that could reshape it past the redactor.
        output = await self.call(step, record, arguments)
        value = self.runner.redactor.redact(output.value)
        record.status, record.result = StepStatus.SUCCEEDED.value, value
        record.result_size = len(json.dumps(value, ensure_ascii=False, default=str))
        content = self.keep_content(step, record, output.blocks)
        record.end(clock.now())
        context.step_ended(step.id, record.status, result=value, content=content)
        if step.save_as:
            context.save(step.save_as, value)
        recorder.done += 1
        self.current = None
        recorder.log(
            "INFO", f"succeeded after {record.attempts} attempt(s) in {record.duration_ms} ms", step.id
        )
        recorder.changed(record, steps_completed=recorder.done)
        recorder.tell(f"step {step.id} succeeded")

    async def condition(self, step: Step) -> bool:
        assert step.if_ is not None
        try:
            return is_truthy(await off_loop(evaluate, step.if_, self.context.as_expression_input()))
        except ExpressionError as error:
            raise StepFailed(ErrorType.EXPRESSION_ERROR, f"if: {error}") from error

    async def arguments(self, step: Step, path: str) -> dict[str, Any]:
        missing = sorted(name for name in self.plan.secrets[step.id] if name not in self.runner.secrets)
        if missing:
            names = ", ".join(f"{name} (environment variable ORCH_SECRET_{name})" for name in missing)
            raise StepFailed(ErrorType.MISSING_SECRET, f"secret not set: {names}")
        try:
            context, secrets = self.context.as_expression_input(), self.runner.secrets
            with_path = join_path(path, "with")
            arguments = await off_loop(sharing_budget, render, step.with_, context, with_path, secrets)
        except TemplateError as error:
            raise StepFailed(ErrorType.TEMPLATE_ERROR, str(error)) from error
        catalog = self.runner.catalog
        tool = catalog.tool(step.uses)
        if tool is None:  # not known yet: open its server's session, or re-read its tool list
            await self.recorder.flush()
            await catalog.prepare([step.uses])
            tool = catalog.tool(step.uses)
        if tool is not None:
            problems = check_arguments(arguments, tool.input_schema, join_path(path, "with"))
            if problems:
                text = "; ".join(str(problem) for problem in problems)
                raise StepFailed(ErrorType.INVALID_ARGUMENTS, text)
        return dict(arguments)

    def keep_content(self, step: Step, record: StepRecord, blocks: Sequence[Block]) -> list[dict[str, Any]]:
        """List the result's blocks that are not text on the record (binary data stored whole beside
        them, read through the step's `content/{n}` resource) and log what was kept."""
        if not blocks:
            return []
        base = f"orchestrator://runs/{self.run_row.id}/steps/{step.id}/content"
        redact = self.runner.redactor.redact
        # A resource link keeps its own `uri`; every other block is read through the step's resource.
        listing = [{"uri": f"{base}/{n}"} | redact(block.listing) for n, block in enumerate(blocks)]
        record.content, record.content_data = listing, [block.data for block in blocks]
        kinds = ", ".join(f"{item['type']} {item.get('mime_type') or ''}".strip() for item in listing)
        self.recorder.log("INFO", f"kept {len(listing)} content block(s): {kinds}", step.id)
        return listing

    async def call(self, step: Step, record: StepRecord, arguments: dict[str, Any]) -> ToolOutput:
        retry = step.retry or self.policy.retry
        timeout = float(step.timeout_seconds or self.policy.step_timeout_seconds)
        watch = StepWatch(self.recorder, step.id, self.runner.clock)
        while True:
            record.attempts += 1
            try:
                with trusted_caller(self.grants.admin):
                    return await self.runner.catalog.call_output(step.uses, arguments, timeout, watch)
            except ToolCallError as error:
                message = self.runner.redactor.redact_text(error.message)
                if not should_retry(retry, record.attempts, error.kind):
                    status = StepStatus.TIMED_OUT if error.kind is FailureKind.TIMEOUT else StepStatus.FAILED
                    raise StepFailed(ErrorType(error.kind.value), message, status) from None
                delay = backoff_delay(retry, record.attempts)
                self.recorder.log(
                    "WARNING",
                    f"attempt {record.attempts} failed ({error.kind.value}): {message}; "
                    f"retrying in {delay:g}s",
                    step.id,
                )
                self.recorder.changed(record)
                await self.recorder.flush()
                await self.runner.clock.sleep(delay)

    # -- the end ----------------------------------------------------------------------------

    async def evaluate_output(self) -> tuple[Any, RunError | None]:
        if self.output is None:
            return self.runner.redactor.redact(self.context.vars), None
        try:
            return self.runner.redactor.redact(
                await off_loop(evaluate, self.output, self.context.as_expression_input())
            ), None
        except ExpressionError as error:
            message = f"output: {error}"
            self.recorder.log("ERROR", message)
            return None, RunError(ErrorType.OUTPUT_ERROR, message)

    async def finish(self, status: RunStatus, error: RunError | None, output: Any, started: datetime) -> None:
        now = self.runner.clock.now()
        if error is not None:
            error = RunError(error.type, self.runner.redactor.redact_text(error.message), error.step_id)
        self.recorder.log("INFO" if status is RunStatus.SUCCEEDED else "ERROR", f"run {status.value}")
        end = RunEnd(status, now, error, ms_between(now, started), self.recorder.done, output)
        await self.recorder.flush(end.columns())  # the last records and the run's end: one write
        self.recorder.publish(f"run {status.value}", final=True)

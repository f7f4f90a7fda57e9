"""A run's records while it executes (its steps' records, log lines, run fields) and the writes
that store them: everything noted since the last write goes in the next one, and the notices about
the run go out only once what they tell is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.pipeline import Step
from orchestrator_mcp.domain.redaction import Redactor
from orchestrator_mcp.domain.run import StepStatus
from orchestrator_mcp.engine.events import RunEvent, RunEvents
from orchestrator_mcp.store.base import RunJournal
from orchestrator_mcp.store.outage import through_outages
from orchestrator_mcp.store.tables import LogValues, RunRow, StepValues, log_line


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
    content: list[dict[str, Any]] | None = None
    content_data: list[str | None] | None = None

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
            "content": self.content,
            "content_data": self.content_data,
        }

    def end(self, now: datetime) -> None:
        """The step ended at `now` (its status set by the caller)."""
        self.finished_at = now
        if self.started_at is not None:
            self.duration_ms = ms_between(now, self.started_at)


class Recorder:
    """One run's records, and what changed in them since the last write."""

    def __init__(
        self,
        run: RunRow,
        steps_total: int,
        store: RunJournal,
        clock: Clock,
        redactor: Redactor,
        events: RunEvents,
    ) -> None:
        self.run = run
        self.steps_total = steps_total
        """The run's main steps (what notices count progress against)."""
        self.store = store
        self.clock = clock
        self.redactor = redactor
        self.events = events
        self.records: dict[str, StepRecord] = {}
        """By step id, every step of the run (main and on_failure) once it is planned."""
        self.done = 0
        """Steps that succeeded or were skipped (the run's `steps_completed`)."""
        # What changed since the last write, and the notices waiting for it.
        self.dirty: dict[int, StepRecord] = {}
        self.logs: list[LogValues] = []
        self.run_values: dict[str, Any] = {}
        self.notices: list[RunEvent] = []

    def new_record(self, step: Step, seq: int, phase: str) -> StepRecord:
        record = StepRecord(run_id=self.run.id, seq=seq, step_id=step.id, uses=step.uses, phase=phase)
        self.records[step.id] = record
        return record

    def log(self, level: str, message: str, step_id: str | None = None) -> None:
        text = self.redactor.redact_text(message)
        self.logs.append(log_line(self.run.id, self.clock.now(), level, text, step_id))

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
                await self.store.record_progress(self.run.id, rows, logs, run_values, end)

            # Never cut half-written, and waited through a database restart: the run goes on after it.
            with anyio.CancelScope(shield=True):
                await through_outages(write, f"the records of run {self.run.id}")
        notices, self.notices = self.notices, []
        for notice in notices:
            self.events.publish(notice)

    def tell(self, message: str) -> None:
        """Send a notice about the run once what it tells is stored (after the next write)."""
        self.notices.append(self.event(message))

    def publish(self, message: str, final: bool = False) -> None:
        """Send a notice about the run now (what it tells is stored already)."""
        self.events.publish(self.event(message, final))

    def event(self, message: str, final: bool = False) -> RunEvent:
        text = self.redactor.redact_text(message)
        return RunEvent(self.run.id, self.run.owner, text, self.done, self.steps_total, final)


def ms_between(end: datetime, start: datetime) -> int:
    return max(0, int((end - start).total_seconds() * 1000))

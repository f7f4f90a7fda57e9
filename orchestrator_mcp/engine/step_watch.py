"""What a step's downstream server says while the step's call runs, carried into the run: its
progress as notices (a waited `run_now` relays them as progress messages) and as log lines, at most
one a second; its log messages, and what the orchestrator answered its requests, as log lines."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.engine.records import Recorder

PROGRESS_INTERVAL = timedelta(seconds=1)


class StepWatch:
    """A `CallWatcher` for one step of one run."""

    def __init__(self, recorder: Recorder, step_id: str, clock: Clock) -> None:
        self.recorder = recorder
        self.step_id = step_id
        self.clock = clock
        self.last_progress_at: datetime | None = None

    def progress(self, progress: float, total: float | None, message: str | None) -> None:
        now = self.clock.now()
        if self.last_progress_at is not None and now - self.last_progress_at < PROGRESS_INTERVAL:
            return
        self.last_progress_at = now
        amount = f"{progress:g}/{total:g}" if total else f"{progress:g}"
        text = f"{message} ({amount})" if message else amount
        self.recorder.log("INFO", f"progress: {text}", self.step_id)
        event = self.recorder.event(f"step {self.step_id}: {text}")
        self.recorder.events.publish(
            dataclasses.replace(event, progress=self.recorder.done + within_step(progress, total))
        )

    def log(self, level: str, message: str) -> None:
        self.recorder.log(level, message, self.step_id)


def within_step(progress: float, total: float | None) -> float:
    """How far into its step a call is, in [0, 1): its own fraction when it has a total, else a
    number that grows with its progress (a progress notification's value must only grow)."""
    if total:
        return min(max(progress / total, 0.0), 0.99)
    return max(progress, 0.0) / (max(progress, 0.0) + 1)

"""Firing due tasks: each due fire time becomes runs (queued, skipped, or started at once in this
instance's free slots), in the store's fire transaction."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.firing import ActiveRuns, FirePlan, plan_fire
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.run import RunEnd, Trigger
from orchestrator_mcp.domain.schedule import Schedule, ScheduleTooCostly, apply_jitter, fire_time_budget
from orchestrator_mcp.engine.dispatch import Dispatcher
from orchestrator_mcp.engine.readings import Readings
from orchestrator_mcp.engine.run_rows import run_values
from orchestrator_mcp.engine.settings import EngineSettings
from orchestrator_mcp.store.base import RunQueue
from orchestrator_mcp.store.tables import TaskRow

logger = logging.getLogger(__name__)

FIRE_BATCH = 200
FIRE_ROUNDS = 50


class Firing:
    """Fires due tasks; what it fires it starts through the dispatcher's free slots.

    `cancels_requested` is called after a fire whose overlap policy asked running runs to stop
    (`cancel_other`), so those of this process stop now rather than at the next cancel poll.
    """

    def __init__(
        self,
        store: RunQueue,
        clock: Clock,
        settings: EngineSettings,
        readings: Readings,
        dispatcher: Dispatcher,
        cancels_requested: Callable[[], None],
        rng: random.Random,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.readings = readings
        self.dispatcher = dispatcher
        self._cancels_requested = cancels_requested
        self._rng = rng
        self._cancelling = False  # set by the planner (maybe in the store's thread), read after a fire

    async def fire_if_due(self, now: datetime) -> datetime | None:
        """Fire what is due unless the last reading says nothing is; returns the next due time."""
        due = self.readings.due
        if due.holds(now):
            return due.value
        return await due.take(now, self.settings.poll_interval_seconds, lambda: self.fire_due(now))

    async def fire_due(self, now: datetime) -> datetime | None:
        """Turn every due fire time into runs, and start those this instance has free slots for
        (see `RunQueue.fire_due`); returns the next fire time due after `now`, if any.

        Firing is a write transaction, so it is only begun when a (cheaper) read finds something due:
        the loop goes round after every run that ends, mostly with nothing to fire.
        """
        for _ in range(FIRE_ROUNDS):
            due = await self.store.next_due_at()
            if due is None or due > now:
                return due
            slots = self.dispatcher.slots()
            fired = await self.store.fire_due(now, self._plan, self._run_rows, FIRE_BATCH, slots)
            self.dispatcher.start(fired.started)
            if fired.queued:
                self.readings.ready.forget()  # runs were queued
            if self._cancelling:
                self._cancelling = False
                self._cancels_requested()
        return now  # bounded: more is due, so the loop comes straight back

    def _plan(self, task: TaskRow, active: ActiveRuns) -> FirePlan:
        """Plan a fire; a task whose stored definition cannot be planned is paused, never retried forever.

        So is a task whose fire times have become too costly to compute (one budget per fire): it
        would cost the same at every fire, holding the fire transaction each time.
        """
        try:
            assert task.next_run_at is not None and task.anchor is not None
            schedule = Schedule.model_validate(task.schedule)
            policy = Policy.model_validate(task.policy)
            with fire_time_budget():
                plan = plan_fire(schedule, task.anchor, policy, task.next_run_at, self.clock.now(), active)
        except ScheduleTooCostly as error:
            logger.warning("pausing task %s: %s", task.id, error)
            return FirePlan(broken=str(error))
        except Exception as error:
            logger.exception("cannot plan the next fire of task %s; pausing it", task.id)
            return FirePlan(broken=f"{type(error).__name__}: {error}")
        if plan.cancel_active:
            self._cancelling = True
        return plan

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
                fields |= RunEnd(planned.status, now).columns() | planned.skipped.columns()
            rows.append(
                run_values(task, Trigger.SCHEDULE, planned.scheduled_for, now, policy, task.params, **fields)
            )
        return rows

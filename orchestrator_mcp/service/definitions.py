"""Checking a task's definition: its schedule, policy and pipeline, every problem at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from orchestrator_mcp.catalog import Catalog
from orchestrator_mcp.clock import Clock
from orchestrator_mcp.domain.grants import GrantSource
from orchestrator_mcp.domain.pipeline import CheckedPipeline, check_pipeline, problems_from_validation
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.schedule import (
    Schedule,
    ScheduleTooCostly,
    check_schedule,
    upcoming_fire_times,
)
from orchestrator_mcp.domain.schedule_words import describe_schedule
from orchestrator_mcp.errors import InvalidArgument
from orchestrator_mcp.offload import off_loop
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.service.row_views import problem_views
from orchestrator_mcp.views import PreviewView, ValidationView

T = TypeVar("T")


class Definitions:
    """Schedules, policies and pipelines as a principal writes them, checked against the catalog."""

    def __init__(self, catalog: Catalog, clock: Clock, grants: GrantSource | None = None) -> None:
        """`grants` says which secrets an owner may use (None: every owner may use every one)."""
        self.catalog = catalog
        self.clock = clock
        self.grants = grants

    async def fire_times(self, compute: Callable[[], T]) -> T:
        """Compute fire times (within their budget, off the event loop when slow).

        Raises:
            InvalidArgument: on `schedule.expr`, when they are too costly to compute.
        """
        try:
            return await off_loop(compute)
        except ScheduleTooCostly as error:
            raise InvalidArgument(str(error), "schedule.expr") from None

    async def parse_schedule(self, raw: Mapping[str, Any], problems: list[Problem]) -> Schedule | None:
        """The schedule, or None with its problems added to `problems`."""
        try:
            schedule = Schedule.model_validate(raw)
        except ValidationError as error:
            problems.extend(problems_from_validation(error, "schedule"))
            return None
        found = await off_loop(check_schedule, schedule, self.clock.now())
        problems.extend(found)
        return None if found else schedule

    def parse_policy(self, raw: Mapping[str, Any] | None, problems: list[Problem]) -> Policy:
        try:
            return Policy.model_validate(raw or {})
        except ValidationError as error:
            problems.extend(problems_from_validation(error, "policy"))
            return Policy()

    async def check_pipeline(
        self, pipeline: Sequence[Any], on_failure: Sequence[Any] | None, output: str | None, owner: str
    ) -> CheckedPipeline:
        """Every problem and warning of a pipeline owned by `owner` (its secrets must be granted to
        it), after loading the tool lists of the servers it names."""
        uses = [
            step["uses"]
            for step in [*pipeline, *(on_failure or [])]
            if isinstance(step, Mapping) and isinstance(step.get("uses"), str)
        ]
        await self.catalog.prepare(uses)
        grants = None if self.grants is None else await self.grants.grants_of(owner)
        catalog = self.catalog
        return check_pipeline(
            pipeline, on_failure, output, catalog.schemas(), catalog.unavailable(), grants, catalog.refusals()
        )

    async def check(
        self,
        *,
        owner: str,
        title: str,
        schedule: Mapping[str, Any],
        pipeline: Sequence[Any],
        on_failure: Sequence[Any] | None,
        output: str | None,
        policy: Mapping[str, Any] | None,
    ) -> tuple[Schedule, Policy, list[Problem]]:
        """Check a whole task definition, to be owned by `owner`; returns its schedule, its policy
        and the warnings about it.

        Raises:
            InvalidArgument: listing every problem, each with its path.
        """
        problems: list[Problem] = []
        if not title.strip():
            problems.append(Problem("title", "must not be empty"))
        parsed_schedule = await self.parse_schedule(schedule, problems)
        parsed_policy = self.parse_policy(policy, problems)
        checked = await self.check_pipeline(pipeline, on_failure, output, owner)
        problems.extend(checked.problems)
        if problems or parsed_schedule is None:
            raise InvalidArgument(problems)
        return parsed_schedule, parsed_policy, checked.warnings

    async def validate_pipeline(
        self,
        who: Principal,
        *,
        pipeline: Sequence[Any],
        params: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
        on_failure: Sequence[Any] | None = None,
        output: str | None = None,
    ) -> ValidationView:
        who.require("tasks:read")
        checked = await self.check_pipeline(pipeline, on_failure, output, who.name)
        problems = checked.problems
        next_runs: list[datetime] = []
        if schedule is not None:
            parsed = await self.parse_schedule(schedule, problems)
            if parsed is not None:
                now = self.clock.now()
                try:
                    next_runs = await self.fire_times(lambda: upcoming_fire_times(parsed, now, 5))
                except InvalidArgument as error:
                    problems.extend(error.problems)
        return ValidationView(
            valid=not problems,
            errors=problem_views(problems),
            warnings=problem_views(checked.warnings),
            next_runs=next_runs,
        )

    async def preview_schedule(self, who: Principal, schedule: Mapping[str, Any], count: int) -> PreviewView:
        who.require("tasks:read")
        problems: list[Problem] = []
        parsed = await self.parse_schedule(schedule, problems)
        if parsed is None:
            raise InvalidArgument(problems)
        now = self.clock.now()
        return PreviewView(
            description=describe_schedule(parsed),
            next_runs=await self.fire_times(lambda: upcoming_fire_times(parsed, now, count)),
        )

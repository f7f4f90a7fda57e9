"""Parsed pipelines, kept between runs of a task while its stored definition stays the same.

Parsing a task's steps and policy (pydantic validation) and scanning its templates for secrets costs
more than the rest of a no-op run's bookkeeping, and a task usually runs many times unchanged. The
cache compares the stored definition by value on every use, so an updated task is parsed again at
its next run, whoever updated it (this process or another sharing the database).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator_mcp.domain.pipeline import Step
from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.secret_refs import referenced_secrets
from orchestrator_mcp.store.tables import TaskRow

PLAN_CACHE_SIZE = 1024
"""Tasks whose parsed pipeline is kept; the least recently run is dropped first."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A task's pipeline, `on_failure` steps and policy, parsed; shared by its runs, never changed."""

    steps: tuple[Step, ...]
    handlers: tuple[Step, ...]
    policy: Policy
    secrets: Mapping[str, frozenset[str]]
    """By step id: the names its templates read as `secrets.NAME`."""

    @classmethod
    def parse(cls, task: TaskRow) -> Plan:
        """Parse a stored task.

        Raises:
            ValueError: the stored pipeline or policy no longer parses (pydantic's ValidationError).
        """
        steps = tuple(Step.model_validate(item) for item in task.pipeline)
        handlers = tuple(Step.model_validate(item) for item in task.on_failure or [])
        secrets = {step.id: frozenset(referenced_secrets(step.with_)) for step in (*steps, *handlers)}
        return cls(steps, handlers, Policy.model_validate(task.policy), secrets)


_Source = tuple[list[Any], list[Any] | None, dict[str, Any]]


class PlanCache:
    """Plans by task id, reused while the task's pipeline, `on_failure` and policy are equal."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        self._plans: OrderedDict[str, tuple[_Source, Plan]] = OrderedDict()

    def get(self, task: TaskRow) -> Plan:
        """The plan of `task` as it is stored now.

        Raises:
            ValueError: see `Plan.parse`.
        """
        source: _Source = (task.pipeline, task.on_failure, task.policy)
        kept = self._plans.get(task.id)
        if kept is not None and kept[0] == source:
            self._plans.move_to_end(task.id)
            return kept[1]
        plan = Plan.parse(task)
        self._plans[task.id] = (source, plan)
        self._plans.move_to_end(task.id)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)
        return plan

    def __len__(self) -> int:
        return len(self._plans)

"""Stored rows as the views tools and resources return: one function per kind of record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from orchestrator_mcp.domain.policy import Policy
from orchestrator_mcp.domain.problems import Problem
from orchestrator_mcp.domain.run import TaskStatus
from orchestrator_mcp.domain.schedule import Schedule
from orchestrator_mcp.domain.schedule_words import describe_schedule
from orchestrator_mcp.lines import one_line
from orchestrator_mcp.service.previews import FLOOR, RUN_LIMIT, VALUE_LIMIT, cut_text, limits, preview
from orchestrator_mcp.store.tables import LogRow, RunRow, StepRow, TaskRow
from orchestrator_mcp.timefmt import rfc3339
from orchestrator_mcp.views import ProblemView, RunErrorView, RunView, SavedTaskView, StepView, TaskView

VIEW_CACHE_SIZE = 1024
"""How many distinct schedules and policies keep their description or defaults-filled form: tasks
often share them, and a task is read far more often than it is changed."""


def run_uri(run_id: str) -> str:
    return f"orchestrator://runs/{run_id}"


def saved_view(task: TaskRow, warnings: Sequence[Problem] = ()) -> SavedTaskView:
    """A task just saved, with the warnings of its check."""
    return SavedTaskView(**dict(task_view(task)), warnings=problem_views(warnings))


def problem_views(problems: Sequence[Problem]) -> list[ProblemView]:
    return [ProblemView(path=problem.path, message=problem.message) for problem in problems]


def task_view(task: TaskRow) -> TaskView:
    return TaskView(
        id=task.id,
        title=task.title,
        description=task.description,
        owner=task.owner,
        status=task.status,
        schedule=task.schedule,
        schedule_description=schedule_description(task.schedule),
        pipeline=task.pipeline,
        on_failure=task.on_failure,
        params=task.params,
        output=task.output,
        policy=full_policy(task.policy),
        next_run_at=task.next_run_at if task.status == TaskStatus.ACTIVE.value else None,
        last_run_at=task.last_run_at,
        last_run_status=task.last_run_status,
        run_count=task.run_count,
        success_count=task.success_count,
        failure_count=task.failure_count,
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


def run_view(run: RunRow, steps: list[StepRow] | None) -> RunView:
    """The Run, its large values cut (previews.py) so that the whole stays under 256 KiB."""
    for limit in limits():
        view = _run_view(run, steps, limit)
        if limit == FLOOR or len(view.model_dump_json()) <= RUN_LIMIT:
            break
    return view


def _run_view(run: RunRow, steps: list[StepRow] | None, limit: int) -> RunView:
    uri = run_uri(run.id)
    return RunView(
        id=run.id,
        task_id=run.task_id,
        task_title=run.task_title,
        trigger=run.trigger,
        status=run.status,
        scheduled_for=run.scheduled_for,
        queued_at=run.queued_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        attempt=run.attempt,
        params=preview(run.params, f"{uri}/params", limit),
        steps_total=run.steps_total,
        steps_completed=run.steps_completed,
        error=RunErrorView.model_validate(run.error) if run.error else None,
        output=preview(run.output, f"{uri}/output", limit),
        log_uri=f"{uri}/log",
        steps=None if steps is None else [step_view(step, limit) for step in steps],
        skipped_fires=run.skipped_fires,
        last_scheduled_for=run.last_scheduled_for,
    )


def step_view(step: StepRow, limit: int = VALUE_LIMIT) -> StepView:
    base = f"{run_uri(step.run_id)}/steps/{step.step_id}"
    result = preview(step.result, f"{base}/result", limit, step.result_size)
    return StepView(
        step_id=step.step_id,
        uses=step.uses,
        phase=step.phase,
        status=step.status,
        attempts=step.attempts,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_ms=step.duration_ms,
        arguments=preview(step.arguments, f"{base}/arguments", limit),
        result=result,
        result_uri=f"{base}/result" if result is not step.result else None,
        error=cut_text(step.error, limit),
        content=step.content,
        skip_reason=step.skip_reason,
    )


def format_log_line(row: LogRow) -> str:
    """`<time> <LEVEL> [step <id>] <message>` (SPEC §7): one line, whatever the message holds (its
    control characters are written escaped; stored messages keep them as they came)."""
    step = f" [step {row.step_id}]" if row.step_id else ""
    return f"{rfc3339(row.at)} {row.level}{step} {one_line(row.message)}"


def canonical_json(value: Any) -> str:
    """The same text for the same JSON value, whatever its keys' order."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def schedule_description(schedule: Mapping[str, Any]) -> str:
    """`describe_schedule` of a stored schedule (cron and rrule wording costs ~0.1 ms each time)."""
    return _describe_stored_schedule(canonical_json(schedule))


@lru_cache(maxsize=VIEW_CACHE_SIZE)
def _describe_stored_schedule(schedule_json: str) -> str:
    return describe_schedule(Schedule.model_validate(json.loads(schedule_json)))


def full_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A stored policy with every default filled in, as JSON values; a new dict on each call."""
    full: dict[str, Any] = json.loads(_full_policy_json(canonical_json(policy)))
    return full


@lru_cache(maxsize=VIEW_CACHE_SIZE)
def _full_policy_json(policy_json: str) -> str:
    return json.dumps(Policy.model_validate(json.loads(policy_json)).model_dump(mode="json"))

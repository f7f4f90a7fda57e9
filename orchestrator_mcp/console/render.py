"""Tasks and runs as tables for people (rich); `--json` prints the views themselves instead."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator_mcp.views import RunView, StepView, TaskView, View

STYLES = {
    "succeeded": "green",
    "active": "green",
    "running": "cyan",
    "queued": "yellow",
    "paused": "yellow",
    "failed": "bold red",
    "timed_out": "bold red",
    "interrupted": "magenta",
    "cancelled": "dim",
    "skipped": "dim",
    "completed": "dim",
}
NONE = "-"
ERROR_WIDTH = 60
"""Characters of an error message a table shows; `show` has it whole."""


def as_json(view: View) -> str:
    """The view as the tool returns it (its structured content), indented."""
    return json.dumps(view.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False)


def status(value: str | None) -> Text:
    return Text(value or NONE, style=STYLES.get(value or "", ""))


def when(moment: datetime | None) -> str:
    return NONE if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def took(milliseconds: int | None) -> str:
    if milliseconds is None:
        return NONE
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


def clipped(text: str | None, width: int = ERROR_WIDTH) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def task_table(tasks: list[TaskView]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "TITLE", "STATUS", "SCHEDULE", "NEXT RUN", "LAST RUN", "RUNS"):
        table.add_column(column, no_wrap=column not in ("TITLE", "SCHEDULE"))
    for task in tasks:
        last = Text(when(task.last_run_at) + " ") + status(task.last_run_status) if task.last_run_at else NONE
        runs = (
            f"{task.run_count} ({task.failure_count} failed)" if task.failure_count else str(task.run_count)
        )
        table.add_row(
            task.id,
            task.title,
            status(task.status),
            task.schedule_description,
            when(task.next_run_at),
            last,
            runs,
        )
    return table


def fields(rows: list[tuple[str, RenderableType]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def task_detail(task: TaskView) -> RenderableType:
    steps = Table(box=None, header_style="bold", pad_edge=False, title="pipeline", title_justify="left")
    for column in ("STEP", "USES", "IF"):
        steps.add_column(column)
    for step in task.pipeline:
        steps.add_row(str(step.get("id", "")), str(step.get("uses", "")), str(step.get("if", "")))
    rows: list[tuple[str, RenderableType]] = [
        ("id", task.id),
        ("title", task.title),
        ("status", status(task.status)),
        ("owner", task.owner),
        ("schedule", f"{task.schedule_description}  {json.dumps(task.schedule)}"),
        ("next run", when(task.next_run_at)),
        ("last run", Text(when(task.last_run_at) + " ") + status(task.last_run_status)),
        ("runs", f"{task.run_count} ({task.success_count} succeeded, {task.failure_count} failed)"),
        ("params", json.dumps(task.params, ensure_ascii=False)),
        ("policy", json.dumps(task.policy)),
        ("created", when(task.created_at)),
    ]
    if task.description:
        rows.insert(2, ("description", task.description))
    return Group(fields(rows), Text(), steps)


def run_table(runs: list[RunView]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "TASK", "STATUS", "TRIGGER", "SCHEDULED FOR", "DURATION", "ERROR"):
        table.add_column(column, no_wrap=column not in ("TASK", "ERROR"))
    for run in runs:
        error = f"{run.error.type}: {clipped(run.error.message)}" if run.error else ""
        table.add_row(
            run.id,
            run.task_title,
            status(run.status),
            run.trigger,
            when(run.scheduled_for),
            took(run.duration_ms),
            error,
        )
    return table


def run_detail(run: RunView) -> RenderableType:
    rows: list[tuple[str, RenderableType]] = [
        ("id", run.id),
        ("task", f"{run.task_title} ({run.task_id})"),
        ("status", status(run.status)),
        ("trigger", run.trigger),
        ("scheduled for", when(run.scheduled_for)),
        ("started", when(run.started_at)),
        ("finished", when(run.finished_at)),
        ("duration", took(run.duration_ms)),
        ("steps", f"{run.steps_completed} of {run.steps_total}"),
    ]
    if run.error is not None:
        where = f" at step {run.error.step_id}" if run.error.step_id else ""
        rows.append(("error", Text(f"{run.error.type}{where}: {run.error.message}", style="red")))
    if run.output is not None:
        rows.append(("output", compact(run.output)))
    parts: list[RenderableType] = [fields(rows)]
    if run.steps:
        parts += [Text(), step_table(run.steps)]
    return Group(*parts)


def step_table(steps: list[StepView]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, title="steps", title_justify="left")
    for column in ("STEP", "USES", "STATUS", "ATTEMPTS", "DURATION", "RESULT OR ERROR"):
        table.add_column(column, no_wrap=column in ("STEP", "STATUS"))
    for step in steps:
        outcome = step.error or step.skip_reason or compact(step.result)
        table.add_row(
            step.step_id,
            step.uses,
            status(step.status),
            str(step.attempts),
            took(step.duration_ms),
            clipped(outcome),
        )
    return table


def compact(value: Any) -> str:
    return clipped(json.dumps(value, ensure_ascii=False), 200) if value is not None else ""

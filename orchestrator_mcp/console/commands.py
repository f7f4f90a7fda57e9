"""What `tasks`, `runs` and `logs` do: one service call each (as the `local` principal), shown as a
table, or with `--json` as the view the matching tool returns."""

from __future__ import annotations

import argparse
import sys

import anyio
from rich.console import Console, RenderableType

from orchestrator_mcp.command_line import PROG
from orchestrator_mcp.config import Settings
from orchestrator_mcp.console.local import PERSON, local_service
from orchestrator_mcp.console.render import as_json, run_detail, run_table, task_detail, task_table, when
from orchestrator_mcp.domain.run import RunStatus
from orchestrator_mcp.errors import OrchestratorError, Unavailable
from orchestrator_mcp.service import Orchestrator
from orchestrator_mcp.views import View

FOLLOW_POLL_SECONDS = 0.5
"""How often `logs --follow` reads the log of a run that has not ended."""
PIPED_WIDTH = 200
"""Columns of a table written to a pipe or a file (a terminal's own width otherwise)."""
RUN_FAILED = 1
RUN_NOT_ENDED = 3
"""Exit status of `tasks run --wait` for a run that ended otherwise than `succeeded`, or had not
ended when the wait was over."""


async def run_people_command(args: argparse.Namespace, settings: Settings) -> int:
    async with local_service(settings) as service:
        try:
            return await dispatch(service, args)
        except Unavailable:
            raise  # one line from the entry point, exit 1
        except OrchestratorError as error:  # not found, conflict: the message is for the reader
            print(f"{PROG}: {error.message}", file=sys.stderr)
            return 1


async def dispatch(service: Orchestrator, args: argparse.Namespace) -> int:
    if args.command == "logs":
        return await show_log(service, args.run_id, follow=args.follow)
    if args.command == "runs":
        if args.action == "list":
            runs = await service.runs.list_runs(
                PERSON,
                task_id=args.task,
                status=args.status,
                since=None,
                limit=args.limit,
                cursor=args.cursor,
            )
            return show(runs, args.json, run_table(runs.runs), runs.next_cursor)
        run = await service.runs.get_run(PERSON, args.run_id)
        return show(run, args.json, run_detail(run))
    if args.action == "list":
        tasks = await service.tasks.list_tasks(
            PERSON, status=args.status, query=args.query, limit=args.limit, cursor=args.cursor
        )
        return show(tasks, args.json, task_table(tasks.tasks), tasks.next_cursor)
    if args.action == "show":
        task = await service.tasks.get_task(PERSON, args.task_id)
        return show(task, args.json, task_detail(task))
    if args.action == "pause":
        task = await service.tasks.pause_task(PERSON, args.task_id)
        return show(task, args.json, f"Paused task {task.id} ({task.title}).")
    if args.action == "resume":
        task = await service.tasks.resume_task(PERSON, args.task_id)
        return show(
            task, args.json, f"Resumed task {task.id} ({task.title}); next run {when(task.next_run_at)}."
        )
    return await run_task(
        service, args.task_id, wait=args.wait, wait_seconds=args.timeout, json_out=args.json
    )


def show(view: View, json_out: bool, rendered: RenderableType, next_cursor: str | None = None) -> int:
    if json_out:
        print(as_json(view))
        return 0
    console = people_console()
    console.print(rendered)
    if next_cursor:
        console.print(f"\nMore: add --cursor {next_cursor}", style="dim")
    return 0


def people_console() -> Console:
    """Colour and the terminal's width on a terminal; piped, plain text wide enough for a row."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


async def run_task(
    service: Orchestrator, task_id: str, *, wait: bool, wait_seconds: float, json_out: bool
) -> int:
    """Queue a manual run; a running worker or server executes it (this process executes nothing)."""
    status = await service.status.server_status(PERSON)
    if not status.instances:
        print(
            f"{PROG}: no process runs tasks on this database now; the run waits in the queue until one "
            f"starts (`{PROG} worker`, or a server)",
            file=sys.stderr,
        )
    run = await service.runs.run_now(PERSON, task_id, wait=wait, wait_timeout_seconds=wait_seconds)
    show(run, json_out, run_detail(run) if wait else f"Queued run {run.id} of task {run.task_id}.")
    if not wait:
        return 0
    if not RunStatus(run.status).is_final:
        return RUN_NOT_ENDED
    return 0 if run.status == RunStatus.SUCCEEDED.value else RUN_FAILED


async def show_log(service: Orchestrator, run_id: str, *, follow: bool) -> int:
    """Print the run's log; with `follow`, then its new lines until the run ends."""
    written = 0
    while True:
        ended = RunStatus((await service.runs.get_run(PERSON, run_id, include_steps=False)).status).is_final
        text = await service.runs.run_log(
            PERSON, run_id
        )  # read after the status: an ended run's log is whole
        sys.stdout.write(text[written:])
        sys.stdout.flush()
        written = len(text)
        if ended or not follow:
            return 0
        await anyio.sleep(FOLLOW_POLL_SECONDS)

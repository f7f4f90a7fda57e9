"""Commands for people at this machine, over the service layer as the `local` principal (SPEC §13):

    orchestrator-mcp tasks list|show ID|run ID [--wait]|pause ID|resume ID
    orchestrator-mcp runs list [--task ID] [--status S]|show ID
    orchestrator-mcp logs RUN_ID [--follow]

Tables for people (render.py), `--json` for scripts: the views the matching tools return.
local.py builds the service; commands.py calls it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from orchestrator_mcp.command_line import Parser

if TYPE_CHECKING:
    from orchestrator_mcp.command_line import Commands
    from orchestrator_mcp.config import Settings

TASK_STATUSES = ["active", "paused", "completed", "cancelled"]
RUN_STATUSES = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "timed_out",
    "skipped",
    "interrupted",
]
MAX_PAGE = 200


def page_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_PAGE}, got {text!r}")
    return size


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 3600, got {text!r}")
    return value


def add_people_commands(commands: Commands, common: Parser) -> None:
    """Add `tasks`, `runs` and `logs` to the command line."""
    output = Parser(add_help=False)
    output.add_argument("--json", action="store_true", help="print what the matching tool returns, as JSON")
    paging = Parser(add_help=False)
    paging.add_argument("--limit", type=page_size, default=50, help=f"page size (1-{MAX_PAGE}, default 50)")
    paging.add_argument("--cursor", help="the next page, as the last listing said")

    tasks = commands.add_parser("tasks", parents=[common], help="list, show, run, pause and resume tasks")
    actions = tasks.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common, output, paging], help="the tasks, newest first")
    listing.add_argument("--status", choices=TASK_STATUSES)
    listing.add_argument("--query", help="words in the title or description")
    for action, text in (("show", "one task"), ("pause", "stop firing a task"), ("resume", "fire it again")):
        actions.add_parser(action, parents=[common, output], help=text).add_argument("task_id", metavar="ID")
    run = actions.add_parser(
        "run", parents=[common, output], help="queue a run now (a worker or server executes it)"
    )
    run.add_argument("task_id", metavar="ID")
    run.add_argument(
        "--wait",
        action="store_true",
        help="wait for its end; exit 0 if it succeeded, 1 if not, 3 if still going",
    )
    run.add_argument("--timeout", type=seconds, default=60.0, help="how long --wait waits (default 60 s)")

    runs = commands.add_parser("runs", parents=[common], help="list and show runs")
    run_actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    run_list = run_actions.add_parser("list", parents=[common, output, paging], help="the runs, newest first")
    run_list.add_argument("--task", metavar="ID", help="only this task's runs")
    run_list.add_argument("--status", choices=RUN_STATUSES)
    run_actions.add_parser("show", parents=[common, output], help="one run with its steps").add_argument(
        "run_id", metavar="ID"
    )

    logs = commands.add_parser("logs", parents=[common], help="a run's log")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("--follow", "-f", action="store_true", help="then print new lines until the run ends")


def run_people_command(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from orchestrator_mcp.console.commands import run_people_command as run_command

    return anyio.run(run_command, args, settings)

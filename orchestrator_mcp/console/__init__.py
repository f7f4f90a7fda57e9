"""Commands for people: `tasks`, `runs`, `logs` (placeholder)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator_mcp.command_line import Commands, Parser
    from orchestrator_mcp.config import Settings


def add_people_commands(commands: Commands, common: Parser) -> None:
    pass


def run_people_command(args: argparse.Namespace, settings: Settings) -> int:
    return 0

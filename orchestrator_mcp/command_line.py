"""What every `orchestrator-mcp` command shares: one-line errors, common flags, settings, signals
during start-up, and the ready line.

A bad flag or setting is one line naming it and exit 2, never a usage block or a traceback.
Kept free of heavy imports: the early signal handlers are in place before the rest is loaded.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from typing import TypeAlias

    from anyio import CancelScope
    from anyio.abc import TaskStatus
    from pydantic import ValidationError

    from orchestrator_mcp.config import Settings

    Commands: TypeAlias = argparse._SubParsersAction["Parser"]
    """The subcommands of a parser, as `add_subparsers` returns them."""

logger = logging.getLogger(__name__)

PROG = "orchestrator-mcp"
SETTING_FLAGS = {
    "database_url": "--database-url",
    "catalog": "--catalog",
    "max_concurrent_runs": "--max-concurrent-runs",
    "log_level": "--log-level",
    "rate_limit": "--rate-limit",
    "allowed_hosts": "--allowed-hosts",
    "allowed_origins": "--allowed-origins",
}
"""Settings a flag can give, by field; the flag wins over the `ORCH_*` variable."""
PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")


def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with one line on stderr."""
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(code)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line naming the command and the flag (exit 2)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        where = f"{command}: " if command else ""
        fail(f"{where}{message} (see {self.prog} --help)")


def common_options() -> Parser:
    """Flags every command accepts, before or after its subcommand (`token create --database-url X`).

    Their defaults are suppressed, so a subcommand's absent flag does not hide its parent's."""
    common = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--database-url", metavar="URL", help="overrides ORCH_DATABASE_URL")
    common.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return common


def engine_options() -> Parser:
    """Flags of the commands that run an engine (`serve`, `worker`, `service install`)."""
    options = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    options.add_argument("--catalog", metavar="FILE", help="overrides ORCH_CATALOG")
    options.add_argument(
        "--max-concurrent-runs", metavar="N", type=int, help="overrides ORCH_MAX_CONCURRENT_RUNS"
    )
    return options


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings: `ORCH_*` variables, overridden by the flags given. Ends the command (exit 2,
    one line per bad setting, naming its flag or variable) if one is bad."""
    from pydantic import ValidationError

    from orchestrator_mcp.config import Settings

    given = {field: getattr(args, field) for field in SETTING_FLAGS if getattr(args, field, None) is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = settings_problems(error, {field: SETTING_FLAGS[field] for field in given})
        print("\n".join(f"{PROG}: {problem}" for problem in problems), file=sys.stderr)
        raise SystemExit(2) from None


def settings_problems(error: ValidationError, flags: Mapping[str, str]) -> list[str]:
    """One line per bad setting: its flag if it came from one, else its variable; what was expected;
    what was given (a password in a URL shown as `***`)."""
    problems: list[str] = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = flags.get(field, f"ORCH_{field.upper()}")
        message = str(item["msg"]).removeprefix("Value error, ")
        given = PASSWORD_IN_URL.sub(r"\1***@", str(item.get("input", "")))
        problems.append(f"{name}: {message[:1].lower()}{message[1:]}; got {given!r}")
    return problems


def stop_early_on_signals() -> None:
    """Until a command installs its own handlers, SIGTERM ends it with exit 0 and SIGINT with 130,
    without a traceback: start-up can be interrupted at any moment (nothing is running yet)."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0 if signum == signal.SIGTERM else 128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


ready_logger = logging.getLogger("orchestrator_mcp.ready")
"""Its one line is written whatever the log level: scripts and tests wait for it (SPEC §13)."""
ready_logger.setLevel(logging.INFO)


def shown_database(url: str) -> str:
    """The database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def announce_ready(settings: Settings, transport: str, worker_mode: str) -> None:
    """The one line a process writes to stderr once it serves, its signal handlers installed:
    version, transport, database (password hidden), catalog file, worker mode."""
    from orchestrator_mcp import __version__

    ready_logger.info(
        "orchestrator-mcp %s ready: transport %s, database %s, catalog %s, worker mode %s",
        __version__,
        transport,
        shown_database(settings.database_url),
        settings.catalog or "none",
        worker_mode,
    )


async def stop_on_signal(scope: CancelScope, *, task_status: TaskStatus[None] | None = None) -> None:
    """Cancel `scope` at the first SIGTERM or SIGINT; started once the handlers are in place."""
    import anyio

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        if task_status is not None:
            task_status.started()
        async for signum in signals:
            logger.info("received %s: shutting down", signal.Signals(signum).name)
            scope.cancel()
            return

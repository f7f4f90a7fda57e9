"""`orchestrator-mcp`: `serve` (stdio or HTTP), `worker` (the engine alone), `service` (run the worker
at login), `token` (HTTP bearer tokens), and `tasks`, `runs`, `logs` for people (console/)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchestrator_mcp.command_line import (
    Parser,
    announce_ready,
    common_options,
    engine_options,
    settings_from,
    stop_early_on_signals,
    stop_on_signal,
)

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from mcp.server.mcpserver import MCPServer

    from orchestrator_mcp.config import Settings
    from orchestrator_mcp.errors import Unavailable
    from orchestrator_mcp.server.http import HttpApp, HttpOptions

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from orchestrator_mcp import __version__
    from orchestrator_mcp.console import add_people_commands

    common, engine = common_options(), engine_options()
    parser = Parser(
        prog="orchestrator-mcp", description="A durable scheduler served over MCP.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"orchestrator-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", parents=[common, engine], help="serve MCP (stdio by default, or streamable HTTP)"
    )
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    http = serve.add_argument_group("HTTP (with --transport http)")
    http.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    http.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    http.add_argument("--stateless", action="store_true", help="no sessions: every request stands alone")
    http.add_argument(
        "--no-auth", action="store_true", help="no bearer tokens (loopback hosts only); the caller is 'local'"
    )
    http.add_argument("--allowed-hosts", help="comma-separated Host headers; overrides ORCH_ALLOWED_HOSTS")
    http.add_argument(
        "--allowed-origins", help="comma-separated Origin headers; overrides ORCH_ALLOWED_ORIGINS"
    )
    http.add_argument("--rate-limit", type=int, help="tool calls per principal per minute (ORCH_RATE_LIMIT)")

    worker = commands.add_parser(
        "worker",
        parents=[common, engine],
        help="run the engine alone (fires and executes tasks; no MCP) until SIGTERM or SIGINT",
    )
    shown = worker.add_mutually_exclusive_group()
    shown.add_argument("--status", action="store_true", help="say whether a worker runs for the database")
    shown.add_argument("--stop", action="store_true", help="stop the worker running for the database")
    worker.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)

    service = commands.add_parser(
        "service", parents=[common], help="run the worker at login (systemd user unit or launchd agent)"
    )
    service_actions = service.add_subparsers(dest="action", required=True, metavar="ACTION")
    service_actions.add_parser(
        "install", parents=[common, engine], help="write the unit for this database and catalog"
    )
    service_actions.add_parser("uninstall", parents=[common], help="remove the unit")

    token = commands.add_parser("token", parents=[common], help="manage the bearer tokens of HTTP serving")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", parents=[common], help="issue a token; prints it once, on the last line"
    )
    create.add_argument("--principal", required=True, help="who the token acts as (owner of its tasks)")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: tasks:read,tasks:write,runs:read,runs:write,catalog:read,admin,secret:NAME",
    )
    actions.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a token by id")
    revoke.add_argument("token_id")

    add_people_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    stop_early_on_signals()
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    from orchestrator_mcp.config import secrets_from
    from orchestrator_mcp.domain.redaction import Redactor
    from orchestrator_mcp.logs import configure_logging

    # Over stdio, stdout carries the protocol: every log line goes to stderr.
    # Whoever logs (a library's request line included), no secret value reaches the log.
    configure_logging(
        settings.log_level, settings.log_format, redactor=Redactor(secrets_from(os.environ).values())
    )
    try:
        return run_command(args, settings)
    except Exception as error:
        failure = unavailable_in(error)
        if failure is None:
            raise
        print(f"orchestrator-mcp: {failure}", file=sys.stderr)  # e.g. the database cannot be reached
        return 1


def unavailable_in(error: BaseException) -> Unavailable | None:
    """The `Unavailable` that ended the command, however deep in task-group exception groups."""
    from orchestrator_mcp.errors import Unavailable

    if isinstance(error, Unavailable):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := unavailable_in(inner)) is not None:
                return found
    return None


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    if args.command == "token":
        from orchestrator_mcp.token_cli import run_token_command

        return anyio.run(run_token_command, args, settings)
    if args.command == "worker":
        from orchestrator_mcp.worker import run_worker_command

        return run_worker_command(args, settings)
    if args.command == "service":
        from orchestrator_mcp.worker.units import run_service_command

        return run_service_command(args.action, settings)
    if args.command in ("tasks", "runs", "logs"):
        from orchestrator_mcp.console import run_people_command

        return run_people_command(args, settings)
    if args.transport == "http":
        return serve_http_command(args, settings)
    return serve_stdio_command(settings)


def serve_stdio_command(settings: Settings) -> int:
    import anyio

    from orchestrator_mcp.catalog.file import CatalogFileError
    from orchestrator_mcp.collector import settle_after_start_up
    from orchestrator_mcp.server import create_server
    from orchestrator_mcp.worker.background import ensure_background_worker

    mode: list[str] = []
    try:
        server = create_server(settings, on_ready=lambda: announce_ready(settings, "stdio", *mode))
    except CatalogFileError as error:
        print(f"orchestrator-mcp: {error}", file=sys.stderr)
        return 2
    # Once the catalog file is known to be good, before this server serves: tasks keep firing
    # after its client is gone (SPEC §13).
    mode.append(ensure_background_worker(settings))
    settle_after_start_up()
    anyio.run(serve_stdio, server)
    return 0


def http_options(args: argparse.Namespace, settings: Settings) -> HttpOptions:
    from orchestrator_mcp.server.http import HttpOptions, split_list

    return HttpOptions(
        host=args.host,
        port=args.port,
        stateless=args.stateless,
        auth=not args.no_auth,
        allowed_hosts=split_list(settings.allowed_hosts),
        allowed_origins=split_list(settings.allowed_origins),
    )


def serve_http_command(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from orchestrator_mcp.catalog.file import CatalogFileError
    from orchestrator_mcp.collector import settle_after_start_up
    from orchestrator_mcp.server.http import UnsafeOptions, create_http_app

    options = http_options(args, settings)
    try:
        http = create_http_app(settings, options)
    except (UnsafeOptions, CatalogFileError) as error:
        print(f"orchestrator-mcp: {error}", file=sys.stderr)
        return 2
    settle_after_start_up()
    started = anyio.run(serve_http, http, options, settings)
    return 0 if started else 1


async def serve_http(http: HttpApp, options: HttpOptions, settings: Settings) -> bool:
    """Serve until SIGTERM/SIGINT, then shut down as over stdio; False if the server never started."""
    import anyio

    from orchestrator_mcp.server.http import end_sessions, uvicorn_server

    server = uvicorn_server(http.app, options.host, options.port, settings.log_level)
    async with anyio.create_task_group() as group:

        async def end_on_signal(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                task_status.started()
                async for signum in signals:
                    logger.info("received %s: shutting down", signal.Signals(signum).name)
                    await end_sessions(http.served)
                    server.should_exit = True

        async def announce_once_listening() -> None:
            while True:  # uvicorn offers no event for "listening"
                if server.started:
                    break
                await anyio.sleep(0.05)
            logger.info(
                "serving MCP at %s/mcp (%s, %s)",
                options.base_url,
                "stateless" if options.stateless else "sessions",
                "bearer tokens" if options.auth else "no auth",
            )
            announce_ready(settings, f"http at {options.base_url}/mcp", "off (http)")

        await group.start(end_on_signal)
        group.start_soon(announce_once_listening)
        try:
            await server.serve()
        except SystemExit:  # uvicorn's answer to a failed start-up (port taken, lifespan failed)
            logger.error("could not serve on %s (see the error above)", options.base_url)
        group.cancel_scope.cancel()
    return bool(server.started)


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve MCP over stdio until stdin closes or SIGTERM/SIGINT arrives.

    A signal cancels the server: the engine stops claiming, running runs may finish within the
    shutdown grace (the rest end `interrupted`), the store is closed, and the process exits 0.
    """
    import anyio

    from orchestrator_mcp.server.stdio import run_stdio

    async with anyio.create_task_group() as group:
        await group.start(stop_on_signal, group.cancel_scope)
        # The handler is in place before the server starts, so its ready line comes after it.
        await run_stdio(server)
        group.cancel_scope.cancel()


if __name__ == "__main__":
    sys.exit(main())

"""`orchestrator-mcp serve` (stdio or HTTP) and `orchestrator-mcp token` (HTTP bearer tokens)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from orchestrator_mcp import __version__
from orchestrator_mcp.collector import settle_after_start_up
from orchestrator_mcp.config import Settings, secrets_from
from orchestrator_mcp.domain.redaction import Redactor
from orchestrator_mcp.errors import Unavailable
from orchestrator_mcp.logs import configure_logging

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from orchestrator_mcp.server.http import HttpApp, HttpOptions

logger = logging.getLogger(__name__)
ready_logger = logging.getLogger("orchestrator_mcp.ready")
"""Its one line is written whatever the log level: scripts and tests wait for it (SPEC §13)."""
ready_logger.setLevel(logging.INFO)

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator-mcp", description="A durable scheduler served over MCP."
    )
    parser.add_argument("--version", action="version", version=f"orchestrator-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve MCP (stdio by default, or streamable HTTP)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--database-url", help="overrides ORCH_DATABASE_URL")
    serve.add_argument("--catalog", help="overrides ORCH_CATALOG")
    serve.add_argument("--max-concurrent-runs", type=int, help="overrides ORCH_MAX_CONCURRENT_RUNS")
    serve.add_argument("--log-level", choices=LEVELS)
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

    token = commands.add_parser("token", help="manage the bearer tokens of HTTP serving")
    token.add_argument("--database-url", help="overrides ORCH_DATABASE_URL")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="issue a token; prints it once, on the last line")
    create.add_argument("--principal", required=True, help="who the token acts as (owner of its tasks)")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: tasks:read,tasks:write,runs:read,runs:write,catalog:read,admin",
    )
    actions.add_parser("list", help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        "database_url": args.database_url,
        "catalog": getattr(args, "catalog", None),
        "max_concurrent_runs": getattr(args, "max_concurrent_runs", None),
        "log_level": getattr(args, "log_level", None),
        "rate_limit": getattr(args, "rate_limit", None),
        "allowed_hosts": getattr(args, "allowed_hosts", None),
        "allowed_origins": getattr(args, "allowed_origins", None),
    }
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
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
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := unavailable_in(inner)) is not None:
                return found
    return None


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "token":
        from orchestrator_mcp.token_cli import run_token_command

        return anyio.run(run_token_command, args, settings)
    if args.transport == "http":
        return serve_http_command(args, settings)
    from orchestrator_mcp.catalog.file import CatalogFileError
    from orchestrator_mcp.server import create_server

    try:
        server = create_server(settings, on_ready=lambda: announce_ready(settings, "stdio"))
    except CatalogFileError as error:
        print(f"orchestrator-mcp: {error}", file=sys.stderr)
        return 2
    settle_after_start_up()
    anyio.run(serve_stdio, server)
    return 0


def announce_ready(settings: Settings, transport: str) -> None:
    """The one line a process writes to stderr once it serves, its signal handlers installed:
    version, transport, database (password hidden), catalog file, worker mode."""
    from sqlalchemy.engine import make_url

    database = make_url(settings.database_url).render_as_string(hide_password=True)
    ready_logger.info(
        "orchestrator-mcp %s ready: transport %s, database %s, catalog %s, worker mode off",
        __version__,
        transport,
        database,
        settings.catalog or "none",
    )


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
    from orchestrator_mcp.catalog.file import CatalogFileError
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
    from orchestrator_mcp.server.http import end_sessions, uvicorn_server

    server = uvicorn_server(http.app, options.host, options.port, settings.log_level)
    async with anyio.create_task_group() as group:

        async def stop_on_signal(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
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
            announce_ready(settings, f"http at {options.base_url}/mcp")

        await group.start(stop_on_signal)
        group.start_soon(announce_once_listening)
        logger.info(
            "serving MCP at %s/mcp (%s, %s)",
            options.base_url,
            "stateless" if options.stateless else "sessions",
            "bearer tokens" if options.auth else "no auth",
        )
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
    from orchestrator_mcp.server.stdio import run_stdio

    async with anyio.create_task_group() as group:

        async def stop_on_signal(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                task_status.started()
                async for signum in signals:
                    logger.info("received %s: shutting down", signal.Signals(signum).name)
                    group.cancel_scope.cancel()
                    return

        # The handler is in place before the server starts, so its ready line comes after it.
        await group.start(stop_on_signal)
        await run_stdio(server)
        group.cancel_scope.cancel()


if __name__ == "__main__":
    sys.exit(main())

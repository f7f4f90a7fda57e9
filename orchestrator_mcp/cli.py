"""`orchestrator-mcp serve`: the command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator_mcp import __version__
from orchestrator_mcp.config import Settings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator-mcp", description="A durable scheduler served over MCP."
    )
    parser.add_argument("--version", action="version", version=f"orchestrator-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve MCP (stdio by default)")
    serve.add_argument("--transport", choices=["stdio"], default="stdio")
    serve.add_argument("--database-url", help="overrides ORCH_DATABASE_URL")
    serve.add_argument("--catalog", help="overrides ORCH_CATALOG")
    serve.add_argument("--max-concurrent-runs", type=int, help="overrides ORCH_MAX_CONCURRENT_RUNS")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        "database_url": args.database_url,
        "catalog": args.catalog,
        "max_concurrent_runs": args.max_concurrent_runs,
        "log_level": args.log_level,
    }
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from orchestrator_mcp.catalog.file import CatalogFileError
    from orchestrator_mcp.server import create_server

    try:
        server = create_server(settings)
    except CatalogFileError as error:
        print(f"orchestrator-mcp: {error}", file=sys.stderr)
        return 2
    anyio.run(serve_stdio, server)
    return 0


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve MCP over stdio until stdin closes or SIGTERM/SIGINT arrives.

    A signal cancels the server: the engine stops claiming, running runs may finish within the
    shutdown grace (the rest end `interrupted`), the store is closed, and the process exits 0.
    """
    from orchestrator_mcp.server.stdio import run_stdio

    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    logger.info("received %s: shutting down", signal.Signals(signum).name)
                    group.cancel_scope.cancel()
                    return

        group.start_soon(stop_on_signal)
        await run_stdio(server)
        group.cancel_scope.cancel()


if __name__ == "__main__":
    sys.exit(main())

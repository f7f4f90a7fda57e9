"""`orchestrator-mcp serve`: the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from orchestrator_mcp import __version__
from orchestrator_mcp.config import Settings


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
    server.run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())

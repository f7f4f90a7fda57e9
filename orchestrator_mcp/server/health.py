"""`/health/live`, `/health/ready` and `/metrics`: what an operator or a load balancer asks.

None needs a token, and none shows a principal's name or id, a secret, a file path or a command
line: readiness details need an admin token, metrics carry tool, server, status and outcome labels
only (server names are the operator's catalog keys)."""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator_mcp.principal import LOCAL
from orchestrator_mcp.server.app import Served
from orchestrator_mcp.server.identity import principal_of
from orchestrator_mcp.server.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)

LOOP_SLACK_SECONDS = 10.0
"""How far behind its poll interval the scheduler loop may be and still count as alive."""


async def live(_: Request) -> Response:
    """200 while the process serves HTTP at all."""
    return JSONResponse({"status": "live"})


def shows_details(request: Request) -> bool:
    """Whether the caller may read readiness details: with an `admin` bearer token, or when the server
    requires no tokens at all (`--no-auth`, loopback only: every caller is `local`, an admin)."""
    if "user" not in request.scope:  # no bearer middleware: tokens are not required
        return LOCAL.is_admin
    user = request.scope["user"]
    return isinstance(user, AuthenticatedUser) and principal_of(user.access_token).is_admin


def readiness(served: Served, poll_interval_seconds: float) -> Any:
    """The `/health/ready` endpoint: 200 when the database answers and the scheduler loop is alive.

    Anyone may ask; only an admin reads why (the database's error, the scheduler's last round) and
    the catalog's state, whose errors name commands, paths and hosts."""

    async def ready(request: Request) -> Response:
        orchestrator = served.current()
        if orchestrator is None:
            return JSONResponse({"status": "starting", "ready": False}, status_code=503)
        status = orchestrator.status
        database = await status.database_health()
        scheduler = status.scheduler_health(poll_interval_seconds)
        ok = database["ok"] and scheduler["ok"]
        body: dict[str, Any] = {
            "status": "ready" if ok else "unready",
            "ready": ok,
            "database": {"ok": database["ok"]},
            "scheduler": {"ok": scheduler["ok"]},
        }
        if shows_details(request):
            body |= {"database": database, "scheduler": scheduler, "catalog": status.catalog_health()}
        return JSONResponse(body, status_code=200 if ok else 503)

    return ready


def metrics_endpoint(served: Served) -> Any:
    """The `/metrics` endpoint, in the Prometheus text format."""

    async def metrics(_: Request) -> Response:
        orchestrator = served.current()
        if orchestrator is None:
            return Response("starting\n", status_code=503, media_type="text/plain")
        try:
            body = served.metrics.render(*await orchestrator.status.run_counts())
        except Exception:  # the store-derived gauges need the database; its error may name hosts, paths
            logger.warning("/metrics: the database cannot be read", exc_info=True)
            return Response("database unreachable\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE)

    return metrics

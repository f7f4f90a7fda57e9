"""`/health/live`, `/health/ready` and `/metrics`: what an operator or a load balancer asks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator_mcp.server.app import Served
from orchestrator_mcp.server.metrics import CONTENT_TYPE

LOOP_SLACK_SECONDS = 10.0
"""How far behind its poll interval the scheduler loop may be and still count as alive."""


async def live(_: Request) -> Response:
    """200 while the process serves HTTP at all."""
    return JSONResponse({"status": "live"})


def readiness(served: Served, poll_interval_seconds: float) -> Any:
    """The `/health/ready` endpoint: 200 when the database answers and the scheduler loop is alive."""

    async def ready(_: Request) -> Response:
        orchestrator = served.current()
        if orchestrator is None:
            return JSONResponse({"status": "starting", "ready": False}, status_code=503)
        status = orchestrator.status
        database = await status.database_health()
        scheduler = status.scheduler_health(poll_interval_seconds)
        ok = database["ok"] and scheduler["ok"]
        body = {
            "status": "ready" if ok else "unready",
            "ready": ok,
            "database": database,
            "scheduler": scheduler,
            "catalog": status.catalog_health(),
        }
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
        except Exception as error:  # the store-derived gauges need the database
            return Response(f"database unreachable: {error}\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE)

    return metrics

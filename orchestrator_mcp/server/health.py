"""`/health/live`, `/health/ready` and `/metrics`: what an operator or a load balancer asks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator_mcp.server.app import Served
from orchestrator_mcp.server.metrics import CONTENT_TYPE
from orchestrator_mcp.service import Orchestrator
from orchestrator_mcp.timefmt import rfc3339

LOOP_SLACK_SECONDS = 10.0
"""How far behind its poll interval the scheduler loop may be and still count as alive."""


async def live(_: Request) -> Response:
    """200 while the process serves HTTP at all."""
    return JSONResponse({"status": "live"})


def scheduler_state(orchestrator: Orchestrator, poll_interval_seconds: float) -> dict[str, Any]:
    """Alive when the engine loop went round recently (it wakes at least every poll interval)."""
    engine = orchestrator.engine
    last = engine.last_loop_at
    limit = timedelta(seconds=3 * poll_interval_seconds + LOOP_SLACK_SECONDS)
    alive = last is not None and orchestrator.clock.now() - last <= limit
    return {
        "ok": alive,
        "last_loop_at": rfc3339(last) if last else None,
        "running_runs": len(engine.handles),
    }


async def database_state(orchestrator: Orchestrator) -> dict[str, Any]:
    try:
        await orchestrator.store.ping()
    except Exception as error:  # any failure means "not reachable" to a probe
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"ok": True}


def catalog_state(orchestrator: Orchestrator) -> dict[str, Any]:
    """Informative only: a downstream server being down does not make this server unready."""
    servers = orchestrator.catalog.servers.values()
    return {
        "servers_available": sum(1 for server in servers if server.available),
        "servers_total": len(servers),
        "unavailable": orchestrator.catalog.unavailable(),
    }


def readiness(served: Served, poll_interval_seconds: float) -> Any:
    """The `/health/ready` endpoint: 200 when the database answers and the scheduler loop is alive."""

    async def ready(_: Request) -> Response:
        orchestrator = served.current()
        if orchestrator is None:
            return JSONResponse({"status": "starting", "ready": False}, status_code=503)
        database = await database_state(orchestrator)
        scheduler = scheduler_state(orchestrator, poll_interval_seconds)
        ok = database["ok"] and scheduler["ok"]
        body = {
            "status": "ready" if ok else "unready",
            "ready": ok,
            "database": database,
            "scheduler": scheduler,
            "catalog": catalog_state(orchestrator),
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
            body = await served.metrics.render(orchestrator.store)
        except Exception as error:  # the store-derived gauges need the database
            return Response(f"database unreachable: {error}\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE)

    return metrics

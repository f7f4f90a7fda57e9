"""A loopback HTTP listener that records every request it gets, for tests of what leaves a run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from orchestrator_mcp.server.http import uvicorn_server
from tests.http.support import free_port


@dataclass
class Seen:
    """One request as the listener got it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str


@dataclass
class Listener:
    """Where it listens, what it answers (`status`, and the raw query string echoed back if
    `echo_query`), and every request seen."""

    url: str
    status: int = 200
    echo_query: bool = False
    seen: list[Seen] = field(default_factory=list)


@asynccontextmanager
async def listening() -> AsyncIterator[Listener]:
    """Serve a recording listener on a free loopback port until the block ends."""
    port = free_port()
    listener = Listener(f"http://127.0.0.1:{port}")

    async def anything(request: Request) -> Response:
        body = (await request.body()).decode(errors="replace")
        query = request.url.query
        listener.seen.append(Seen(request.method, request.url.path, query, dict(request.headers), body))
        return PlainTextResponse(f"got {query}" if listener.echo_query else "ok", status_code=listener.status)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", anything, methods=methods)])
    server = uvicorn_server(app, "127.0.0.1", port, "WARNING")
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for "started")
            await anyio.sleep(0.02)
        try:
            yield listener
        finally:
            server.should_exit = True

"""A real uvicorn-served app on a loopback port, and the SDK's client talking to it over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.config import Settings
from orchestrator_mcp.server.http import HttpApp, HttpOptions, create_http_app, uvicorn_server
from orchestrator_mcp.store.tokens import TokenStore

ALL = "tasks:read,tasks:write,runs:read,runs:write,catalog:read"

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
"""A raw 2025-11-25 `initialize` request, for tests that speak HTTP below the SDK's client."""
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    """A served app: its base URL and the server behind it."""

    http: HttpApp
    base_url: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def tokens(self) -> TokenStore:
        tokens = self.http.served.token_store()
        assert tokens is not None
        return tokens

    async def token(self, principal: str, scopes: str = ALL) -> str:
        """A new bearer token, issued straight into the server's database."""
        issued = await self.tokens.issue(principal, scopes.split(","), datetime.now(UTC))
        return issued.secret

    async def revoke(self, secret: str) -> None:
        tokens = self.tokens
        found = await tokens.find(secret)
        assert found is not None
        assert await tokens.revoke(found.id, datetime.now(UTC))


@asynccontextmanager
async def serving(
    settings: Settings, clock: Clock | None = None, **options: object
) -> AsyncIterator[Running]:
    """Serve `create_http_app` with uvicorn on a free loopback port until the block ends."""
    port = free_port()
    http_options = HttpOptions(host="127.0.0.1", port=port, **options)  # type: ignore[arg-type]
    http = create_http_app(settings, http_options, clock)
    server = uvicorn_server(http.app, "127.0.0.1", port, "WARNING")
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        with anyio.fail_after(15):
            while True:  # uvicorn offers no event for "started"
                if server.started:
                    break
                await anyio.sleep(0.02)
        try:
            yield Running(http, http_options.base_url)
        finally:
            server.should_exit = True


@asynccontextmanager
async def connect(url: str, token: str | None = None, mode: str = "legacy") -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, sending `token` as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http_client:
        transport = streamable_http_client(url, http_client=http_client)
        async with Client(transport, mode=mode) as client:
            yield client

"""What the limit tests share: a raw session opening, and a check that the server still answers."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
from mcp.shared.exceptions import MCPError

from tests.conftest import call_ok
from tests.http.support import INITIALIZE, MCP_HEADERS, connect

ANSWER_SECONDS = 1.0
"""How soon the server must answer another principal while one principal is being refused."""


async def open_session(http: httpx2.AsyncClient, url: str, token: str) -> httpx2.Response:
    """A bare 2025-11-25 `initialize` POST, as a client that never closes its sessions sends it."""
    return await http.post(url, json=INITIALIZE, headers=MCP_HEADERS | {"authorization": f"Bearer {token}"})


async def delete_session(http: httpx2.AsyncClient, url: str, token: str, session: str) -> int:
    headers = {
        "authorization": f"Bearer {token}",
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
    }
    return (await http.delete(url, headers=headers)).status_code


def refusal(response: httpx2.Response) -> str:
    """The message of a JSON-RPC error answered with HTTP 429."""
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    message: str = body["error"]["message"]
    return message


async def still_answers(url: str, token: str, mode: str = "legacy") -> None:
    """Another principal connects, and its tool call is answered within `ANSWER_SECONDS`."""
    with anyio.fail_after(10):
        async with connect(url, token, mode) as client:
            with anyio.fail_after(ANSWER_SECONDS):
                preview = await call_ok(
                    client, "preview_schedule", {"schedule": {"kind": "interval", "expr": "1h"}}
                )
            assert len(preview["next_runs"]) == 5


def tool_error(text: str) -> str:
    """A tool error's own text, without the `Error executing tool <name>: ` the SDK puts first."""
    prefix = "Error executing tool "
    return text.split(": ", 1)[1] if text.startswith(prefix) else text


async def refused_connection(url: str, token: str, mode: str = "legacy") -> str:
    """Connect with the SDK's client, which must be refused; returns the server's error message."""
    try:
        async with connect(url, token, mode):
            pass
    except (MCPError, ExceptionGroup) as error:
        found: BaseException = error
        while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
            found = found.exceptions[0]  # the client's task groups wrap it
        assert isinstance(found, MCPError), error
        return str(found)
    raise AssertionError("the client was not refused")

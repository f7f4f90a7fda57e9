"""Every MCP request of a principal counts toward its rate limit (SPEC §11).

A call of one of this server's tools is counted where it is answered (calls.py), against
`ORCH_RATE_LIMIT` per minute, and refused with a tool error. Every other request (`initialize`,
`ping`, reads, listings, prompts, completions, subscriptions, `subscriptions/listen`, a call of a
tool this server does not have) is counted here, against ten times that, and refused with a
JSON-RPC error (`LIMITED`) saying when to retry. Notifications are not requests: they pass.
Over stdio nothing is counted (one user); see `build_server`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError

from orchestrator_mcp.errors import OrchestratorError
from orchestrator_mcp.ratelimit import RateLimiter
from orchestrator_mcp.server.identity import caller

LIMITED = -32029
"""JSON-RPC error code (implementation-defined range) of a request refused by a principal's limit:
its request rate, or a quota (sessions, listen streams). The message names the limit."""
REQUESTS_PER_TOOL_CALL = 10
"""Other requests a principal may make per minute for each tool call its rate limit allows."""


def request_limiter(tool_calls_per_minute: int, now: Callable[[], float]) -> RateLimiter:
    """The limiter of requests other than tool calls: ten times the tool-call rate."""
    return RateLimiter(
        REQUESTS_PER_TOOL_CALL * tool_calls_per_minute, now, what="requests other than tool calls"
    )


class RequestLimit:
    """Server middleware: takes one request from the caller's budget, or refuses the request.

    `is_tool(name)`: whether `name` is a tool this server counts itself (see `ToolCalls`).
    """

    def __init__(self, limiter: RateLimiter, is_tool: Callable[[str], bool]) -> None:
        self.limiter = limiter
        self._is_tool = is_tool

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is not None and not self._counted_as_tool_call(ctx):
            try:
                who = caller(ctx)
            except OrchestratorError:  # no verified token: the handler refuses it
                return await call_next(ctx)
            wait = self.limiter.wait_needed(who.name)
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                raise MCPError(
                    LIMITED, self.limiter.refusal(who.name, seconds), {"retry_after_seconds": seconds}
                )
        return await call_next(ctx)

    def _counted_as_tool_call(self, ctx: ServerRequestContext[Any, Any]) -> bool:
        if ctx.method != "tools/call" or not isinstance(ctx.params, Mapping):
            return False
        name = ctx.params.get("name")
        return isinstance(name, str) and self._is_tool(name)

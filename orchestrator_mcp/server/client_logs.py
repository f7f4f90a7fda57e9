"""Log notices to the client (`notifications/message`) at the level its session asked for.

The client picks the level with `logging/setLevel` (default `info`). Only handshake-era (2025-11-25)
connections get them: 2026-07-28 dropped the logging capability.
"""

from __future__ import annotations

import weakref
from typing import Any, get_args

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from orchestrator_mcp.server import sdk

LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
DEFAULT_LEVEL: types.LoggingLevel = "info"


def connection_of(session: ServerSession) -> Connection:
    """The client connection behind a request's session.

    The SDK builds a new `ServerSession` proxy for every request; only its connection lasts as long as
    the client, so per-client state (log level, subscriptions) is keyed by it.
    """
    return sdk.session_connection(session)


class ClientLogLevels:
    """The least severe level each connection wants to hear; forgotten with the connection."""

    def __init__(self) -> None:
        self._levels: weakref.WeakKeyDictionary[Connection, types.LoggingLevel] = weakref.WeakKeyDictionary()

    def allows(self, session: ServerSession, level: types.LoggingLevel) -> bool:
        wanted = self._levels.get(connection_of(session), DEFAULT_LEVEL)
        return LEVELS.index(level) >= LEVELS.index(wanted)

    async def send(self, ctx: Context[Any, Any], level: types.LoggingLevel, message: str) -> None:
        """Send `message` on the current request's stream if the connection wants that level."""
        session = ctx.request_context.session
        if session.protocol_version in MODERN_PROTOCOL_VERSIONS or not self.allows(session, level):
            return
        notice = types.LoggingMessageNotification(
            params=types.LoggingMessageNotificationParams(level=level, data=message, logger="orchestrator")
        )
        await session.send_notification(notice, related_request_id=ctx.request_id)

    def register(self, mcp: MCPServer[Any]) -> None:
        async def set_level(
            ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
        ) -> types.EmptyResult:
            self._levels[connection_of(ctx.session)] = params.level
            return types.EmptyResult()

        # Registered directly: the SDK's constructor argument for it warns that 2026-07-28 dropped it.
        sdk.add_request_handler(mcp, "logging/setLevel", types.SetLevelRequestParams, set_level)

"""The orchestrator as a client of downstream servers: the capabilities it declares, what it
answers to their requests (roots, elicitation, sampling), and where their notices about a call in
flight go (progress, log messages).

A notice or request reaches the call it belongs to when the transport says so: over streamable
HTTP, the SDK handles what arrives on a request's response stream in the context of the task that
made the request, so `CURRENT_CALL` names the call. Over stdio nothing does: what arrives goes to
every call in flight on that server (usually one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import mcp_types as types
from mcp.client.session import ClientRequestContext

from orchestrator_mcp.catalog.failures import excerpt

logger = logging.getLogger("orchestrator_mcp.downstream")

MAX_LOG_LINES_PER_CALL = 200
"""Downstream log messages kept in a run's log per call; a note says when more were left out."""
LOG_MESSAGE_CHARS = 2000

RUN_LOG_LEVELS: dict[str, str] = {
    "debug": "DEBUG",
    "info": "INFO",
    "notice": "INFO",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "ERROR",
    "alert": "ERROR",
    "emergency": "ERROR",
}
"""An MCP log level as a run log level."""


class CallWatcher(Protocol):
    """Told what a downstream server says about one call while it runs (the step's run records it)."""

    def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """A `notifications/progress` for the call."""

    def log(self, level: str, message: str) -> None:
        """A line for the run log: a downstream log message, or what the orchestrator answered."""


@dataclass(eq=False, slots=True)
class InFlight:
    """One tool call in flight on a session."""

    uses: str
    watcher: CallWatcher | None
    logged: int = 0

    def log(self, level: str, message: str) -> None:
        if self.watcher is None:
            return
        self.logged += 1
        if self.logged <= MAX_LOG_LINES_PER_CALL:
            self.watcher.log(level, message)
        elif self.logged == MAX_LOG_LINES_PER_CALL + 1:
            self.watcher.log("WARNING", f"{self.uses}: further log messages of this call left out")


CURRENT_CALL: ContextVar[InFlight | None] = ContextVar("downstream_current_call", default=None)


class ClientSide:
    """One server's callbacks: roots from its catalog entry, elicitation declined (nobody is there
    to answer), sampling declined (no model is configured), log messages to the run log."""

    def __init__(self, server: str, roots: Sequence[str] = ()) -> None:
        self.server = server
        self.roots = [types.Root(uri=uri) for uri in roots]
        self.calls: set[InFlight] = set()

    def client_options(self) -> dict[str, Any]:
        """`mcp.Client` arguments: declaring roots, elicitation and sampling, hearing log messages
        (at `info` and above on 2026-07-28 sessions, where a request must opt in)."""
        return {
            "list_roots_callback": self.list_roots,
            "elicitation_callback": self.elicit,
            "sampling_callback": self.sample,
            "logging_callback": self.log_message,
            "log_level": "info",
        }

    def _targets(self) -> list[InFlight]:
        current = CURRENT_CALL.get()
        return [current] if current is not None else list(self.calls)

    def _note(self, level: str, message: str) -> None:
        for call in self._targets():
            call.log(level, message)

    async def list_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=self.roots)

    async def elicit(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        asked = excerpt(getattr(params, "message", "") or "", 300)
        self._note(
            "WARNING",
            f"server '{self.server}' asked for input ({asked}): declined, nobody is there to answer",
        )
        logger.info("[%s] elicitation declined: %s", self.server, asked)
        return types.ElicitResult(action="decline")

    async def sample(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.ErrorData:
        self._note(
            "WARNING",
            f"server '{self.server}' asked for a model completion: declined, no model is configured",
        )
        logger.info("[%s] sampling declined: no model is configured", self.server)
        return types.ErrorData(
            code=types.INVALID_REQUEST, message="sampling declined: the orchestrator has no model configured"
        )

    async def log_message(self, params: types.LoggingMessageNotificationParams) -> None:
        data = params.data if isinstance(params.data, str) else json.dumps(params.data, default=str)
        text = excerpt(data, LOG_MESSAGE_CHARS) if "\n" not in data else data[:LOG_MESSAGE_CHARS]
        source = f"{self.server}/{params.logger}" if params.logger else self.server
        level = RUN_LOG_LEVELS.get(params.level, "INFO")
        self._note(level, f"[{source}] {text}")
        logger.log(logging.getLevelName(level), "[%s] %s", source, text)

"""What happens around every tool call: who calls, the rate limit, errors, metrics and one log line."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from orchestrator_mcp.errors import OrchestratorError
from orchestrator_mcp.principal import Principal
from orchestrator_mcp.ratelimit import RateLimiter
from orchestrator_mcp.server.identity import caller
from orchestrator_mcp.server.metrics import Metrics
from orchestrator_mcp.store.outage import is_outage

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("orchestrator_mcp.tools")

UNAVAILABLE = (
    "the database cannot be reached right now (restarting, unreachable or busy); try again in a few seconds"
)


def _run_id(arguments: dict[str, Any], result: Any) -> str | None:
    run_id = arguments.get("run_id")
    if isinstance(run_id, str):
        return run_id
    found = getattr(result, "id", None)
    return found if isinstance(found, str) and found.startswith("run_") else None


class ToolCalls:
    """Wraps each tool function; built once per server, so each server has its own limits and counts."""

    def __init__(self, metrics: Metrics | None = None, limiter: RateLimiter | None = None) -> None:
        self.metrics = metrics
        self.limiter = limiter
        self.names: set[str] = set()
        """The tools wrapped: a call of any of them is counted here, not as another request."""

    def is_tool(self, name: str) -> bool:
        return name in self.names

    def wrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Turn the service's errors into tool errors the model reads (`isError: true`), after checking
        the caller's rate limit, and record the call."""
        name = fn.__name__
        self.names.add(name)

        @wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            outcome, who, result = "ok", None, None
            try:
                ctx = kwargs.get("ctx")
                if isinstance(ctx, Context):
                    who = caller(ctx.request_context)
                    if self.limiter is not None:
                        self.limiter.admit(who.name)
                result = await fn(*args, **kwargs)
                return result
            except OrchestratorError as error:
                outcome = error.code
                raise ToolError(error.message) from error
            except Exception as error:
                if not is_outage(error):
                    outcome = "internal"
                    raise
                outcome = "unavailable"
                raise ToolError(UNAVAILABLE) from error
            finally:
                self._record(name, outcome, who, time.perf_counter() - started, kwargs, result)

        wrapper.__doc__ = inspect.cleandoc(fn.__doc__ or "")
        return wrapper

    def _record(
        self,
        tool: str,
        outcome: str,
        who: Principal | None,
        seconds: float,
        arguments: dict[str, Any],
        result: Any,
    ) -> None:
        if self.metrics is not None:
            self.metrics.tool_called(tool, outcome, seconds)
        extra: dict[str, Any] = {"tool": tool, "outcome": outcome, "duration_ms": round(seconds * 1000, 1)}
        if who is not None:
            extra["principal"] = who.name
        if (run_id := _run_id(arguments, result)) is not None:
            extra["run_id"] = run_id
        logger.info("tool %s %s in %.1f ms", tool, outcome, seconds * 1000, extra=extra)

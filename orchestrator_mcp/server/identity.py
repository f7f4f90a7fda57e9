"""Who is calling: the owner of the bearer token over HTTP, the local user otherwise.

The SDK's bearer middleware puts the verified token in the HTTP request's scope as `user`; every
MCP message carries the request that delivered it, so the caller is read from there per message
(a session's messages may arrive on different requests). With authentication on, a request
without a verified token never gets this far; if one did, it is refused rather than trusted.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult
from starlette.requests import HTTPConnection

from orchestrator_mcp.errors import PermissionDenied
from orchestrator_mcp.principal import LOCAL, Principal


def principal_of(token: AccessToken) -> Principal:
    """The principal a verified token stands for (its client id is the principal's name)."""
    return Principal(token.client_id, frozenset(token.scopes))


def caller(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The principal of the request being handled.

    Raises:
        PermissionDenied: the request came through the bearer middleware without a verified token.
    """
    request = ctx.request
    if isinstance(request, HTTPConnection) and "user" in request.scope:
        user = request.scope["user"]
        if isinstance(user, AuthenticatedUser):
            return principal_of(user.access_token)
        raise PermissionDenied("this call needs a valid bearer token")
    token = get_access_token()
    return LOCAL if token is None else principal_of(token)


_current: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("orchestrator_request", default=None)


class RememberRequest:
    """Server middleware that keeps the request being handled, for handlers the SDK gives no context
    (static resources, completions)."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        token = _current.set(ctx)
        try:
            return await call_next(ctx)
        finally:
            _current.reset(token)


def current_request() -> ServerRequestContext[Any, Any] | None:
    """The request being handled (see `RememberRequest`); None outside any request."""
    return _current.get()


def current_caller() -> Principal:
    """The caller of the request being handled (see `RememberRequest`); LOCAL outside any request.

    Raises:
        PermissionDenied: as `caller`.
    """
    ctx = current_request()
    return LOCAL if ctx is None else caller(ctx)

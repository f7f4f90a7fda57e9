"""Open sessions per principal (SPEC §11): a principal past its quota is refused a new session, not
everyone.

The SDK's session manager keeps at most 10,000 sessions for all principals together, each until
it is deleted, its transport closes or it has been idle for 30 minutes; so one principal that
opened 10,000 sessions with bare `initialize` requests had every new session of anyone refused
(503) for half an hour. `SessionQuota` sits between the bearer middleware and the SDK and counts
each principal's sessions: a request that would open one more than `per_principal` is answered
429 with a JSON-RPC error naming the limit, and so is a new session while the principal's request
budget is spent (with `Retry-After`), so no session is opened for an `initialize` the request
limit would refuse anyway.

A session is counted from the response that hands out its id for as long as the manager holds it:
however it ends (DELETE, idle timeout, closed transport, crash) the manager forgets it, and the
count is taken against the manager's own sessions each time (`sdk.open_session_ids`). A request
still opening its session counts too, so a burst of concurrent `initialize`s cannot pass the quota.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import ErrorData, JSONRPCError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator_mcp.principal import LOCAL
from orchestrator_mcp.ratelimit import RateLimiter
from orchestrator_mcp.server.identity import principal_of
from orchestrator_mcp.server.request_limits import LIMITED

_SESSION_HEADER = MCP_SESSION_ID_HEADER.lower().encode("latin-1")
_VERSION_HEADER = MCP_PROTOCOL_VERSION_HEADER.lower().encode("latin-1")


def opens_session(scope: Scope) -> bool:
    """Whether an HTTP request would open a session if it succeeded: a POST without a session id, in a
    protocol generation that has sessions (2026-07-28 requests carry their version and have none)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    headers = dict(scope["headers"])
    if _SESSION_HEADER in headers:
        return False
    version = headers.get(_VERSION_HEADER)
    return version is None or version.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS


def principal_name(scope: Scope) -> str | None:
    """Whose request this is: a verified token's principal, `local` when no tokens are required
    (no bearer middleware ran), None for a request without a valid token (the SDK refuses it: 401)."""
    if "user" not in scope:
        return LOCAL.name
    user = scope["user"]
    return principal_of(user.access_token).name if isinstance(user, AuthenticatedUser) else None


class SessionQuota:
    """ASGI middleware around the `/mcp` endpoint: at most `per_principal` open sessions each.

    `open_ids()`: the ids of the sessions the SDK holds open now (a live view is best: it is read on
    every new session). `requests`: the principal's budget of requests other than tool calls.
    """

    def __init__(
        self,
        app: ASGIApp,
        open_ids: Callable[[], Collection[str]],
        per_principal: int,
        requests: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.per_principal = per_principal
        self._open_ids = open_ids
        self._requests = requests
        self._held: dict[str, set[str]] = {}
        self._opening: Counter[str] = Counter()

    def open_sessions(self, who: str) -> int:
        """How many sessions `who` holds open now (forgetting those the SDK no longer holds)."""
        held = self._held.get(who)
        if not held:
            return 0
        live = self._open_ids()
        held.difference_update([session for session in held if session not in live])
        if not held:
            del self._held[who]
        return len(held)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = principal_name(scope) if opens_session(scope) else None
        if who is None:
            await self.app(scope, receive, send)
            return
        if self.open_sessions(who) + self._opening[who] >= self.per_principal:
            message = (
                f"session limit: principal '{who}' may hold {self.per_principal} open sessions "
                "(ORCH_MAX_SESSIONS_PER_PRINCIPAL); end one (HTTP DELETE) or let an idle one expire first"
            )
            await _refuse(send, message)
            return
        if self._requests is not None and (seconds := self._requests.retry_after(who)):
            await _refuse(send, self._requests.refusal(who, seconds), seconds)
            return
        await self._open(who, scope, receive, send)

    async def _open(self, who: str, scope: Scope, receive: Receive, send: Send) -> None:
        self._opening[who] += 1
        opening = True

        async def watch(message: Message) -> None:
            nonlocal opening
            if message["type"] == "http.response.start" and opening:
                session = dict(message.get("headers", [])).get(_SESSION_HEADER)
                if message["status"] < 400 and session is not None:
                    self._held.setdefault(who, set()).add(session.decode("latin-1"))
                self._done_opening(who)
                opening = False
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if opening:
                self._done_opening(who)

    def _done_opening(self, who: str) -> None:
        self._opening[who] -= 1
        if self._opening[who] <= 0:
            del self._opening[who]


async def _refuse(send: Send, message: str, retry_after: int | None = None) -> None:
    """HTTP 429 with a JSON-RPC error (no id: the request was not read) that the SDK's client raises."""
    error = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=LIMITED, message=message))
    body = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})

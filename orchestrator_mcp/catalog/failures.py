"""How a downstream failure reads: the HTTP answers behind a session's errors, whether an HTTP
server has forgotten the session, and one-line descriptions of exceptions.

The SDK's HTTP transports turn an error answer into a stand-in (`Server returned an error
response`, `Session terminated`) or into the JSON-RPC error of its body; the answer itself (status
and body) is caught here by an `httpx2` response hook, so the step error and `list_catalog` can
quote what the server said.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

import httpx2
from mcp import MCPError

EXCERPT_CHARS = 300
"""How much of an error answer's body is quoted."""

SESSION_GONE = re.compile(
    r"session (id )?(not found|terminated|expired|unknown)"
    r"|(no valid|invalid|unknown|missing|expired) session",
    re.IGNORECASE,
)
"""How servers say they no longer know a session: `Session not found` (Python SDK, 404), `Bad
Request: No valid session ID provided` (TypeScript SDK, 400), `Session terminated` (the Python
client's stand-in for a 404)."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """An HTTP error answer (status 400 or more) from a downstream server."""

    status: int
    body: str
    """An excerpt, whitespace collapsed."""
    had_session: bool
    """The request carried an `Mcp-Session-Id`."""

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.body}" if self.body else f"HTTP {self.status}"

    @property
    def forgot_session(self) -> bool:
        """The server says it does not know the session the request named."""
        if self.had_session and self.status == 404:
            return True
        return self.status in (400, 404) and SESSION_GONE.search(self.body) is not None


CALL_ANSWERS: ContextVar[list[HttpAnswer] | None] = ContextVar("downstream_call_answers", default=None)
"""The error answers to the requests of the tool call in flight in this context. The SDK sends a
request's HTTP POST in the context of the task that made the request, so the hook below sees the
list the call put here."""


class HttpAnswers:
    """The error answers of one HTTP server: the latest one, and each call's own (see `CALL_ANSWERS`)."""

    def __init__(self) -> None:
        self.latest: HttpAnswer | None = None

    def reset(self) -> None:
        self.latest = None

    async def hook(self, response: httpx2.Response) -> None:
        """An `httpx2` response hook: note an error answer, its body read (it is short)."""
        if response.status_code < 400:
            return
        body = ""
        if not response.headers.get("content-type", "").lower().startswith("text/event-stream"):
            try:
                body = (await response.aread()).decode("utf-8", errors="replace")
            except httpx2.HTTPError:
                body = ""
        answer = HttpAnswer(response.status_code, excerpt(body), "mcp-session-id" in response.request.headers)
        self.latest = answer
        seen = CALL_ANSWERS.get()
        if seen is not None:
            seen.append(answer)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` on one line, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def forgotten_session(error: MCPError, answers: list[HttpAnswer]) -> str | None:
    """The server's own words if `error` means it no longer knows the session, else None."""
    for answer in answers:
        if answer.forgot_session:
            return str(answer)
    if SESSION_GONE.search(error.message):
        return error.message
    return None


def first_error(error: BaseException) -> BaseException:
    """`error`, or the first exception inside it if it is a group (however deep)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def describe(error: BaseException) -> str:
    """One line naming an exception (the first of a group)."""
    error = first_error(error)
    if isinstance(error, httpx2.HTTPStatusError):
        return f"HTTP {error.response.status_code} from {error.request.url}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

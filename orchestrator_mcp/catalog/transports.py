"""How to reach one downstream server (a stdio process, streamable HTTP, legacy HTTP+SSE), with
what it said the last time it failed: the end of the process's stderr, or the HTTP answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import StdioServerParameters
from mcp.client import Transport
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server

from orchestrator_mcp.catalog.failures import HttpAnswers
from orchestrator_mcp.catalog.stderr import StderrTail, captured_stderr

Target = Server[Any] | StdioServerParameters | str | Transport
"""What `mcp.Client` connects to. A `Transport` can be entered once: a `Downstream` makes one per
session."""

CONNECT_SECONDS = 30.0
READ_SECONDS = 300.0
"""How long an HTTP response (a stream of events) may stay silent."""


class Downstream:
    """One downstream server's way in. `open()` is called once per session."""

    transport = "unknown"
    handshake_only = False
    """The server speaks only the initialize handshake (no `server/discover` probe is sent)."""

    def open(self) -> Target:
        raise NotImplementedError

    def opened(self) -> None:
        """A session is open: what the server said before (a probe it refused) is past."""

    def diagnosis(self) -> str | None:
        """What the server itself said when it last failed, if anything."""
        return None


class StdioDownstream(Downstream):
    """A server process on stdio; its stderr is kept (the last lines) and logged."""

    transport = "stdio"

    def __init__(self, name: str, parameters: StdioServerParameters) -> None:
        self.parameters = parameters
        self.stderr = StderrTail(name)

    def open(self) -> Transport:
        return _stdio(self.parameters, self.stderr)

    def opened(self) -> None:
        self.stderr.clear()

    def diagnosis(self) -> str | None:
        text = self.stderr.text()
        return None if text is None else f"its stderr ends with:\n{text}"


@asynccontextmanager
async def _stdio(parameters: StdioServerParameters, tail: StderrTail) -> AsyncIterator[Any]:
    tail.reset()
    async with captured_stderr(tail) as errlog, stdio_client(parameters, errlog=errlog) as streams:
        yield streams


class HttpDownstream(Downstream):
    """A streamable HTTP server; every request carries the entry's headers."""

    transport = "http"

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.answers = HttpAnswers()

    def open(self) -> Transport:
        self.answers.reset()
        return _streamable_http(self.url, self.headers, self.answers)

    def opened(self) -> None:
        self.answers.reset()

    def diagnosis(self) -> str | None:
        return None if self.answers.latest is None else str(self.answers.latest)


def http_client(
    answers: HttpAnswers, headers: dict[str, str] | None, timeout: httpx2.Timeout | None = None
) -> httpx2.AsyncClient:
    """An HTTP client whose error answers `answers` notes."""
    return httpx2.AsyncClient(
        headers=headers,
        timeout=timeout or httpx2.Timeout(CONNECT_SECONDS, read=READ_SECONDS),
        event_hooks={"response": [answers.hook]},
    )


@asynccontextmanager
async def _streamable_http(url: str, headers: dict[str, str], answers: HttpAnswers) -> AsyncIterator[Any]:
    async with (
        http_client(answers, headers) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


class SseDownstream(HttpDownstream):
    """A server on the legacy HTTP+SSE transport (2024-11-05): an event stream to read, an endpoint
    to post to. It predates `server/discover`."""

    transport = "sse"
    handshake_only = True

    def open(self) -> Transport:
        self.answers.reset()
        answers = self.answers

        def factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return http_client(answers, headers, timeout)

        return sse_client(
            self.url, headers=self.headers, timeout=CONNECT_SECONDS, httpx_client_factory=factory
        )

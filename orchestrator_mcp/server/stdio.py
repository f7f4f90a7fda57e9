"""Serving MCP over stdio so that a signal can stop the server.

The SDK reads stdin in a worker thread; a thread blocked in `read()` cannot be cancelled, so a
server cancelled by SIGTERM would drain its engine and then hang until its client closed stdin.
Here stdin (a pipe, socket or terminal) is read only once the event loop says it is readable,
which a cancellation interrupts at once. Anything else (a regular file, or a device such as
`/dev/null` that the event loop cannot watch) falls back to the SDK: reading it never blocks, so
its end of file comes at once.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

from orchestrator_mcp.server import sdk

READ_CHUNK = 1 << 16


class StdinLines:
    """The lines of a readable file descriptor, as `async for` reads them; cancellable at any await."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self._scanned = 0
        self._eof = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                self._scanned = 0
                return line.decode("utf-8", errors="replace")
            self._scanned = len(self._buffer)
            if self._eof:
                if not self._buffer:
                    raise StopAsyncIteration
                rest = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return rest.decode("utf-8", errors="replace")
            await anyio.wait_readable(self.fd)
            # Readable: this read returns what is there (or b"" at end of file) without blocking.
            chunk = os.read(self.fd, READ_CHUNK)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True


def _pollable(fd: int) -> bool:
    """A pipe, a socket or a terminal: what the event loop can wait on. Other character devices
    (`/dev/null`, as nohup, systemd and `docker run` without `-i` give) are refused by epoll."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


async def run_stdio(server: MCPServer[Any]) -> None:
    """Run `server` on this process's stdin and stdout until stdin closes or the caller cancels."""
    if sys.platform == "win32" or not _pollable(0):
        await server.run_stdio_async()
        return
    # Keep the wire on a private descriptor and point fd 0 at the null device, so that nothing
    # else in the process (or a child it starts) reads protocol bytes.
    private = os.dup(0)
    os.set_inheritable(private, False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        stdin = cast("anyio.AsyncFile[str]", StdinLines(private))
        async with stdio_server(stdin=stdin) as (read_stream, write_stream):
            await sdk.run_lowlevel(server, read_stream, write_stream)
    finally:
        os.dup2(private, 0)
        os.close(private)

"""What a stdio server process writes to stderr: each line to this process's log, the last few
kept to say why the server failed (`ModuleNotFoundError: …`, `can't open file …`)."""

from __future__ import annotations

import codecs
import logging
import os
import sys
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

import anyio

logger = logging.getLogger("orchestrator_mcp.downstream")

MAX_LINES = 20
MAX_CHARS = 4096
LINE_CHARS = 1000
"""A longer line is cut (a server may write a whole document on one line)."""
DRAIN_SECONDS = 1.0
"""How long, once the process is gone, reading waits for the last of its output (a child it left
behind may hold the pipe open for ever)."""


class StderrTail:
    """The last lines (at most `MAX_LINES`, `MAX_CHARS`) one server's current process wrote."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._lines: deque[str] = deque()
        self._chars = 0
        self._partial = ""

    def reset(self) -> None:
        """A new process: forget the last one's lines."""
        self.clear()
        self._partial = ""

    def clear(self) -> None:
        """Forget the lines kept so far (what a server wrote while it started is no reason for a
        later failure; an older server writes pages about the `server/discover` probe)."""
        self._lines.clear()
        self._chars = 0

    def feed(self, text: str) -> None:
        """Take what the process wrote; complete lines are kept and logged."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()[-LINE_CHARS:]
        for line in lines:
            self._keep(line)

    def flush(self) -> None:
        """The process closed its stderr: keep an unterminated last line."""
        if self._partial:
            self._keep(self._partial)
            self._partial = ""

    def _keep(self, line: str) -> None:
        line = line.rstrip("\r")[:LINE_CHARS]
        if not line.strip():
            return
        logger.info("[%s] %s", self.server, line)
        self._lines.append(line)
        self._chars += len(line)
        while len(self._lines) > MAX_LINES or (self._chars > MAX_CHARS and len(self._lines) > 1):
            self._chars -= len(self._lines.popleft())

    def text(self) -> str | None:
        """The kept lines, or None if the process wrote nothing."""
        return "\n".join(self._lines) if self._lines else None


@asynccontextmanager
async def captured_stderr(tail: StderrTail) -> AsyncIterator[TextIO]:
    """A file to give a process as its stderr; what it writes goes to `tail` until the process (and
    any child holding the pipe) closes it, or at most `DRAIN_SECONDS` after this context ends.

    Off POSIX (no waiting on a pipe's descriptor), the process writes to this process's stderr."""
    if sys.platform == "win32":  # pragma: no cover
        yield sys.stderr
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    writer = os.fdopen(write_fd, "w")
    drained = anyio.Event()

    async def pump() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                await anyio.wait_readable(read_fd)
                try:
                    data = os.read(read_fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    break
                tail.feed(decoder.decode(data))
        finally:
            tail.feed(decoder.decode(b"", final=True))
            tail.flush()
            os.close(read_fd)
            drained.set()

    async with anyio.create_task_group() as group:
        group.start_soon(pump)
        try:
            yield writer
        finally:
            writer.close()  # this process's end; the server's own closes when it exits
            with anyio.move_on_after(DRAIN_SECONDS, shield=True):
                await drained.wait()
            group.cancel_scope.cancel()

"""A small HTTP/1.1 server on a loopback port that counts every TCP connection it accepts, for tests
that must show no connection was made (or a body never read whole).

`tests/http/listener.py` records what requests carry; this one works below HTTP frameworks so that
it sees connections that never become requests, serves redirects by path and streams bodies of any
length, counting what it managed to send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

CHUNK = 64 * 1024
_GONE = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.DelimiterNotFound,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


@dataclass
class Reply:
    """What a path answers: `body` with its Content-Length, or with `stream_bytes` a chunked body
    of that many bytes and no length."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    stream_bytes: int = 0


@dataclass
class CountingServer:
    """A listening server: its URL, its replies by path, and what reached it."""

    port: int
    routes: dict[str, Reply] = field(default_factory=lambda: {"/": Reply()})
    """Replies by path; any other path is 404."""
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(request line, Host header) of each request read."""
    bytes_sent: int = 0
    """Body bytes written to clients."""
    idle: anyio.Event = field(default_factory=anyio.Event)
    _open: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_idle(self) -> None:
        """Wait until every accepted connection has been answered or dropped."""
        while self._open:
            await self.idle.wait()

    async def serve(self, stream: SocketStream) -> None:
        self.connections += 1
        self._open += 1
        self.idle = anyio.Event()
        try:
            async with stream:
                await self._answer(stream)
        except _GONE:
            pass  # the client went away: nothing to answer
        finally:
            self._open -= 1
            if not self._open:
                self.idle.set()

    async def _answer(self, stream: SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        head = (await reader.receive_until(b"\r\n\r\n", 65536)).decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:])
        }
        self.requests.append((head[0], headers.get("host", "")))
        if int(headers.get("content-length", "0")):
            await reader.receive_exactly(int(headers["content-length"]))
        path = head[0].split(" ")[1].split("?")[0]
        reply = self.routes.get(path, Reply(404, b"not found"))
        lines = [f"HTTP/1.1 {reply.status} X", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        if reply.stream_bytes:
            await stream.send(("\r\n".join([*lines, "Transfer-Encoding: chunked"]) + "\r\n\r\n").encode())
            await self._stream(stream, reply.stream_bytes)
        else:
            body = b"" if head[0].startswith("HEAD ") else reply.body
            lines.append(f"Content-Length: {len(reply.body)}")
            await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            self.bytes_sent += len(body)

    async def _stream(self, stream: SocketStream, size: int) -> None:
        chunk = b"x" * CHUNK
        while self.bytes_sent < size:
            await stream.send(b"%x\r\n%b\r\n" % (CHUNK, chunk))
            self.bytes_sent += CHUNK
        await stream.send(b"0\r\n\r\n")


@asynccontextmanager
async def counting_server() -> AsyncIterator[CountingServer]:
    """A `CountingServer` on a free port of 127.0.0.1 until the block ends."""
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    listener = CountingServer(tcp.extra(SocketAttribute.local_port))
    listener.idle.set()
    async with tcp, anyio.create_task_group() as group:
        group.start_soon(tcp.serve, listener.serve)
        yield listener
        group.cancel_scope.cancel()

"""Connections made only to addresses the network policy checked.

`PinnedBackend` is an httpcore network backend: asked to connect to a host, it gets the host's
checked addresses from `NetworkPolicy.addresses` (resolving the name once, here) and connects to
one of them. The URL, the `Host` header and the TLS server name keep the host as written, so
certificates are verified against the name; only the socket's address is pinned.

`PinnedTransport` is httpx's own transport over a connection pool that uses the backend. httpx
offers no public way to give its transport a network backend, so this module holds the one access
to its private parts (the transport's `_pool`); `tests/catalog/test_network_tool.py` fails the day
that access no longer takes effect.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import anyio
import httpcore2
import httpx2

from tool_catalog.network import NetworkPolicy, Resolver


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Connects to a host only through the addresses `policy` checked (see the module docstring).

    A refusal raises `DestinationRefused` before any connection is attempted; it passes through
    httpx unchanged.
    """

    def __init__(self, policy: NetworkPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._network = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self._checked(host, port, timeout)
        failure: httpcore2.ConnectError | httpcore2.ConnectTimeout | None = None
        for address in addresses:  # like a resolver's caller: the first address that answers
            try:
                return await self._network.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # `addresses` is never empty
        raise failure

    async def _checked(self, host: str, port: int, seconds: float | None) -> list[str]:
        """The addresses to try, resolved within `seconds` (the connect timeout)."""
        try:
            with anyio.fail_after(seconds):
                return [str(address) for address in await self._policy.addresses(host, port, self._resolve)]
        except TimeoutError as error:
            raise httpcore2.ConnectTimeout(f"resolving {host} took over {seconds:g}s") from error
        except OSError as error:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {error}") from error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("Unix sockets are not reachable from http.request")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class PinnedTransport(httpx2.AsyncHTTPTransport):
    """httpx's HTTP transport (HTTP/1.1, no proxy) connecting through a `PinnedBackend`."""

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(ssl_context=ssl_context, network_backend=backend)

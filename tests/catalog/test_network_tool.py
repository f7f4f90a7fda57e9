"""`http.request` under the network policy, against real servers on loopback ports that record
every connection: refused destinations are never connected to, redirects are checked hop by hop,
and bodies are read only up to their limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from ipaddress import ip_address
from typing import Any

import anyio
import httpx2
import pytest

from orchestrator_mcp.catalog import ServerConnection, ToolCallError
from tests.counting_server import CountingServer, Reply, counting_server
from tool_catalog import create_http_server
from tool_catalog.network import DestinationRefused, IPAddress, NetworkPolicy, Resolver
from tool_catalog.pinned import PinnedBackend, PinnedTransport
from tool_catalog.trust import trusted_caller

REMEDY = "ask the operator to name this host in ORCH_HTTP_ALLOW"


def resolving(table: dict[str, str]) -> Resolver:
    """Names of the `.test` domain, each resolving to one address, without asking any DNS server."""

    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        if host not in table:
            raise OSError(f"unknown name {host}")
        return [ip_address(table[host])]

    return resolve


async def call(
    allow: Sequence[str] | None, arguments: dict[str, Any], *, trusted: bool = False, **server: Any
) -> Any:
    """Call `http.request` as a run's step does, for a caller that is (or is not) trusted."""
    connection = ServerConnection("http", "builtin", create_http_server(allow, **server))
    outcome: Any
    async with anyio.create_task_group() as group:
        await group.start(connection.run)
        try:
            with trusted_caller(trusted):
                outcome = await connection.call("request", arguments, 10)
        except ToolCallError as error:
            outcome = error
        finally:
            connection.close()
    if isinstance(outcome, ToolCallError):
        raise outcome
    return outcome


async def refusal(allow: Sequence[str] | None, url: str, *, trusted: bool = False, **server: Any) -> str:
    with pytest.raises(ToolCallError) as failure:
        await call(allow, {"url": url}, trusted=trusted, **server)
    return failure.value.message


@pytest.fixture
async def listener() -> AsyncIterator[CountingServer]:
    async with counting_server() as served:
        yield served


@pytest.fixture
async def other() -> AsyncIterator[CountingServer]:
    async with counting_server() as served:
        yield served


async def test_an_untrusted_caller_is_refused_loopback_in_every_spelling_without_a_connection(
    listener: CountingServer,
) -> None:
    port = listener.port
    for host, shown in [
        ("127.0.0.1", "127.0.0.1 (loopback)"),
        ("2130706433", "2130706433 (127.0.0.1, loopback)"),
        ("0x7f000001", "0x7f000001 (127.0.0.1, loopback)"),
        ("127.1", "127.1 (127.0.0.1, loopback)"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 (::ffff:7f00:1, loopback)"),
        ("localhost", "localhost ("),
    ]:
        message = await refusal(None, f"http://{host}:{port}/")
        assert message.startswith(f"destination {shown}") and message.endswith(REMEDY), message
    assert listener.connections == 0


async def test_cloud_metadata_is_refused_before_any_connection() -> None:
    message = await refusal(None, "http://169.254.169.254/latest/meta-data/")
    assert message == f"destination 169.254.169.254 (link-local) is refused: {REMEDY}"


async def test_a_trusted_caller_reaches_loopback(listener: CountingServer) -> None:
    result = await call(None, {"url": f"{listener.url}/"}, trusted=True)
    assert result == {"status": 200, "headers": result["headers"], "text": "ok"}
    assert listener.requests == [("GET / HTTP/1.1", f"127.0.0.1:{listener.port}")]


@pytest.mark.parametrize("named", ["127.0.0.1", "localhost"])
async def test_naming_the_host_in_the_allow_list_opens_it_to_an_untrusted_caller(
    listener: CountingServer, named: str
) -> None:
    result = await call([named], {"url": f"http://{named}:{listener.port}/"})
    assert result["status"] == 200
    assert listener.requests == [("GET / HTTP/1.1", f"{named}:{listener.port}")]


async def assert_connections_go_through_the_policy(listener: CountingServer) -> None:
    """The transport connects only through the policy's addresses: an httpx client on it is refused
    a loopback literal at connection time (before the URL checks of the tool, which it bypasses).
    Were httpx's private seam to stop taking effect, the listener would see a connection."""
    transport = PinnedTransport(PinnedBackend(NetworkPolicy(), resolving({})), httpx2.create_ssl_context())
    async with httpx2.AsyncClient(transport=transport) as client:
        with pytest.raises(DestinationRefused, match="loopback"):
            await client.get(f"{listener.url}/")
    assert listener.connections == 0


async def test_the_transport_connects_only_through_the_policy(listener: CountingServer) -> None:
    await assert_connections_go_through_the_policy(listener)


async def test_a_name_connects_to_the_address_checked_and_keeps_its_host_header(
    listener: CountingServer,
) -> None:
    await assert_connections_go_through_the_policy(listener)  # else the name would go to real DNS
    resolve = resolving({"service.test": "127.0.0.1"})
    result = await call(
        None, {"url": f"http://service.test:{listener.port}/"}, trusted=True, resolver=resolve
    )
    assert result["status"] == 200
    assert listener.requests == [("GET / HTTP/1.1", f"service.test:{listener.port}")]

    message = await refusal(None, f"http://service.test:{listener.port}/", resolver=resolve)
    assert message.startswith("destination service.test (127.0.0.1, loopback) is refused")
    assert listener.connections == 1


async def test_a_redirect_to_a_host_outside_the_allow_list_is_not_followed(
    listener: CountingServer, other: CountingServer
) -> None:
    listener.routes["/go"] = Reply(302, b"", {"Location": f"{other.url}/secret"})
    for trusted in (False, True):
        message = await refusal(["localhost"], f"http://localhost:{listener.port}/go", trusted=trusted)
        assert message == (
            f"following a redirect to {other.url}/secret: "
            "host '127.0.0.1' is not allowed: ORCH_HTTP_ALLOW names only localhost"
        )
    assert len(listener.requests) == 2 and other.connections == 0


async def test_a_redirect_to_a_refused_address_is_not_followed(
    listener: CountingServer, other: CountingServer
) -> None:
    resolve = resolving({"front.test": "127.0.0.1", "back.test": "127.0.0.1"})
    listener.routes["/literal"] = Reply(307, b"", {"Location": f"{other.url}/"})
    listener.routes["/name"] = Reply(301, b"", {"Location": f"http://back.test:{other.port}/"})
    listener.routes["/metadata"] = Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    allow = ["front.test", "*"]  # any host, and the private addresses of front.test alone
    for path, refused in [
        ("/literal", f"to {other.url}/: destination 127.0.0.1 (loopback) is refused"),
        ("/name", f"to http://back.test:{other.port}/: destination back.test (127.0.0.1, loopback)"),
        (
            "/metadata",
            "to http://169.254.169.254/latest/meta-data/: destination 169.254.169.254 (link-local)",
        ),
    ]:
        message = await refusal(allow, f"http://front.test:{listener.port}{path}", resolver=resolve)
        assert message.startswith(f"following a redirect {refused}"), message
    assert len(listener.requests) == 3 and other.connections == 0


async def test_redirects_are_followed_up_to_ten(listener: CountingServer) -> None:
    for hop in range(11):
        listener.routes[f"/{hop}"] = Reply(302, b"", {"Location": f"/{hop + 1}"})
    listener.routes["/10"] = Reply(200, b"arrived")
    result = await call(None, {"url": f"{listener.url}/0"}, trusted=True)
    assert result["text"] == "arrived" and len(listener.requests) == 11

    listener.routes["/10"] = Reply(302, b"", {"Location": "/11"})
    message = await refusal(None, f"{listener.url}/0", trusted=True)
    assert message == f"more than 10 redirects, the last to {listener.url}/11"
    assert len(listener.requests) == 11 + 11


async def test_a_body_over_the_limit_fails_without_being_read_whole(listener: CountingServer) -> None:
    total = 64 * 1024 * 1024
    listener.routes["/stream"] = Reply(stream_bytes=total)
    message = await refusal(None, f"{listener.url}/stream", trusted=True, max_bytes=1024 * 1024)
    assert message == (
        f"response too large: the body from {listener.url}/stream is over 1048576 bytes "
        "(the limit, ORCH_HTTP_MAX_BYTES)"
    )
    with anyio.fail_after(10):  # the client hung up: the server's writes fail and it gives up
        await listener.wait_idle()
    assert listener.bytes_sent < total


async def test_a_declared_length_over_the_limit_fails_at_once_and_one_at_it_is_read(
    listener: CountingServer,
) -> None:
    listener.routes["/big"] = Reply(body=b"y" * 1001)
    listener.routes["/fits"] = Reply(body=b"y" * 1000)
    message = await refusal(None, f"{listener.url}/big", trusted=True, max_bytes=1000)
    assert message.startswith("response too large: ") and "over 1000 bytes" in message
    fits = await call(None, {"url": f"{listener.url}/fits"}, trusted=True, max_bytes=1000)
    assert fits["text"] == "y" * 1000
    head = await call(None, {"method": "HEAD", "url": f"{listener.url}/big"}, trusted=True, max_bytes=1000)
    assert head["status"] == 200 and head["headers"]["content-length"] == "1001" and head["text"] == ""


async def test_an_error_body_is_quoted_up_to_2_kib(listener: CountingServer) -> None:
    listener.routes["/long"] = Reply(500, "€".encode() * 3000, {"Content-Type": "text/plain; charset=utf-8"})
    listener.routes["/short"] = Reply(404, b"no such thing")
    message = await refusal(None, f"{listener.url}/long", trusted=True)
    quoted = message.removeprefix(f"HTTP 500 X from {listener.url}/long: ")
    assert quoted == "€" * 682 + "… (cut at 2 KiB)"  # 682 whole characters are 2046 of the 2048 bytes
    assert await refusal(None, f"{listener.url}/short", trusted=True) == (
        f"HTTP 404 X from {listener.url}/short: no such thing"
    )


async def test_a_url_httpx_cannot_read_is_an_error_naming_the_url() -> None:
    message = await refusal(None, "http://0177.0.0.1/", trusted=True)
    assert message == "url: Invalid IPv4 address: '0177.0.0.1'"

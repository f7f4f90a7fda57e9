"""`http`: one tool, `request`, for calling plain HTTP APIs from a pipeline.

Where a call may connect is `tool_catalog.network`'s to decide, for the caller of the moment
(`tool_catalog.trust`); this module checks every hop's URL before sending it, follows redirects
itself, and reads a body only up to its limit.
"""

from __future__ import annotations

import codecs
import json
import ssl
from collections.abc import Sequence
from functools import cache
from typing import Any

import httpx2

from tool_catalog._server import BuiltinServer, BuiltinTool, BuiltinToolError, create_server
from tool_catalog.network import DestinationRefused, NetworkPolicy, Resolver, normalise_host, system_resolver
from tool_catalog.pinned import PinnedBackend, PinnedTransport
from tool_catalog.trust import caller_is_trusted

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 10
ERROR_EXCERPT_BYTES = 2048
"""How much of a non-2xx body an error quotes."""

SCHEMA = {
    "type": "object",
    "properties": {
        "method": {
            "type": "string",
            "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            "default": "GET",
        },
        "url": {"type": "string", "pattern": "^https?://", "maxLength": 8192},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "json": {"description": "A JSON body (sets Content-Type: application/json)."},
        "body": {"type": "string", "description": "A raw text body."},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 30},
        "allow_error_status": {"type": "boolean", "default": False},
    },
    "required": ["url"],
    "additionalProperties": False,
}


def describe_tool(max_bytes: int) -> str:
    """The tool's description, for the model that calls it."""
    return (
        "Make an HTTP request and return {status, headers, json} (or {status, headers, text} when the "
        "body is not JSON). A non-2xx status fails the step unless allow_error_status is true (its body "
        f"is quoted up to 2 KiB). Redirects are followed, at most {MAX_REDIRECTS}. A body over "
        f"{max_bytes} bytes fails the step (response too large). Loopback, private and link-local "
        "addresses may be refused, and the operator may limit the hosts (ORCH_HTTP_ALLOW). Example: "
        '{"method": "GET", "url": "https://api.example.com/items", "params": {"q": "x"}}.'
    )


@cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every call (building one reads the CA bundle)."""
    return httpx2.create_ssl_context()


def create_http_server(
    allow_hosts: Sequence[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    resolver: Resolver = system_resolver,
) -> BuiltinServer:
    """The `http` tool server.

    `allow_hosts` (from ORCH_HTTP_ALLOW) limits the hosts it may call and opens the non-public
    addresses of those it names; `max_bytes` (ORCH_HTTP_MAX_BYTES) bounds a response body;
    `resolver` turns host names into addresses.
    """
    allow = None if allow_hosts is None else tuple(normalise_host(pattern) for pattern in allow_hosts)

    async def request(arguments: dict[str, Any]) -> Any:
        if "json" in arguments and "body" in arguments:
            raise BuiltinToolError("give either 'json' or 'body', not both")
        policy = NetworkPolicy(allow, caller_is_trusted())
        url = arguments["url"]
        timeout = float(arguments.get("timeout_seconds", 30))
        transport = PinnedTransport(PinnedBackend(policy, resolver), _ssl_context())
        try:
            async with httpx2.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
                first = client.build_request(
                    arguments.get("method", "GET"),
                    url,
                    headers=arguments.get("headers"),
                    params=arguments.get("params"),
                    json=arguments.get("json"),
                    content=arguments.get("body"),
                )
                response = await _follow(client, first, policy)
                try:
                    return await _answer(response, max_bytes, arguments.get("allow_error_status", False))
                finally:
                    await response.aclose()
        except httpx2.InvalidURL as error:
            raise BuiltinToolError(f"url: {error}") from error
        except httpx2.TimeoutException as error:
            raise BuiltinToolError(f"request to {url} timed out after {timeout:g}s") from error
        except httpx2.HTTPError as error:
            raise BuiltinToolError(f"request to {url} failed: {error}") from error

    tool = BuiltinTool("request", describe_tool(max_bytes), SCHEMA, request, read_only=False)
    return create_server("http", [tool])


async def _follow(
    client: httpx2.AsyncClient, request: httpx2.Request, policy: NetworkPolicy
) -> httpx2.Response:
    """The response at the end of `request`'s redirects, its body not read yet; each hop is checked
    against `policy` before it is sent.

    Raises:
        BuiltinToolError: a hop is refused, or there are more than `MAX_REDIRECTS` redirects.
    """
    for hop in range(MAX_REDIRECTS + 1):
        try:
            _check_hop(request.url, policy)
            response = await client.send(request, stream=True)
        except DestinationRefused as error:
            context = f"following a redirect to {request.url}: " if hop else ""
            raise BuiltinToolError(f"{context}{error}") from error
        if response.next_request is None:
            return response
        await response.aclose()
        request = response.next_request
    raise BuiltinToolError(f"more than {MAX_REDIRECTS} redirects, the last to {request.url}")


def _check_hop(url: httpx2.URL, policy: NetworkPolicy) -> None:
    """Refuse a URL that is not HTTP, or whose host `policy` refuses (as httpcore will name it)."""
    if url.scheme not in ("http", "https"):
        raise DestinationRefused(f"only http and https URLs can be requested, not {url.scheme}")
    policy.check_host(url.raw_host.decode("ascii"))


async def _answer(response: httpx2.Response, max_bytes: int, allow_error_status: bool) -> dict[str, Any]:
    """`{status, headers, json | text}` of `response`.

    Raises:
        BuiltinToolError: a non-2xx status that is not allowed, or a body over `max_bytes`.
    """
    url = response.request.url
    if response.is_error and not allow_error_status:
        excerpt = await _excerpt(response)
        raise BuiltinToolError(f"HTTP {response.status_code} {response.reason_phrase} from {url}: {excerpt}")
    body = await _read_limited(response, max_bytes)
    result: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    text = _decode(body, response.encoding)
    if "json" in response.headers.get("content-type", ""):
        try:
            result["json"] = json.loads(text)
            return result
        except ValueError:
            pass
    result["text"] = text
    return result


async def _read_limited(response: httpx2.Response, max_bytes: int) -> bytes:
    """The whole (decoded) body, refused as soon as it is known to exceed `max_bytes`.

    Raises:
        BuiltinToolError: `response too large`.
    """
    too_large = (
        f"response too large: the body from {response.request.url} is over {max_bytes} bytes "
        "(the limit, ORCH_HTTP_MAX_BYTES)"
    )
    declared = response.headers.get("content-length", "")
    if response.request.method != "HEAD" and declared.isdigit() and int(declared) > max_bytes:
        raise BuiltinToolError(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BuiltinToolError(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def _excerpt(response: httpx2.Response) -> str:
    """The first `ERROR_EXCERPT_BYTES` of the body as text; the rest is never read."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) > ERROR_EXCERPT_BYTES:
            return _decode(head[:ERROR_EXCERPT_BYTES], response.encoding, final=False) + "… (cut at 2 KiB)"
    return _decode(head, response.encoding)


def _decode(body: bytes, encoding: str | None, final: bool = True) -> str:
    """`body` as text; with `final` false, a character cut at the end is left out."""
    try:
        decoder = codecs.getincrementaldecoder(encoding or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return str(decoder.decode(body, final=final))

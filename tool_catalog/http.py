"""`http`: one tool, `request`, for calling plain HTTP APIs from a pipeline."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx2

from tool_catalog._server import BuiltinServer, BuiltinTool, BuiltinToolError, create_server

MAX_BODY_CHARS = 1_000_000

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


def host_allowed(url: str, allow: Sequence[str] | None) -> bool:
    """Whether `url`'s host matches one of the `allow` patterns (`api.example.com`, `*.example.com`)."""
    if allow is None:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return any(fnmatch.fnmatchcase(host, pattern.strip().lower()) for pattern in allow if pattern.strip())


def create_http_server(
    allow_hosts: Sequence[str] | None = None, transport: httpx2.AsyncBaseTransport | None = None
) -> BuiltinServer:
    """The `http` tool server. `allow_hosts` (from ORCH_HTTP_ALLOW) limits the hosts it may call."""

    async def request(arguments: dict[str, Any]) -> Any:
        url = arguments["url"]
        if not host_allowed(url, allow_hosts):
            raise BuiltinToolError(
                f"host of '{url}' is not allowed (ORCH_HTTP_ALLOW={','.join(allow_hosts or [])})"
            )
        if "json" in arguments and "body" in arguments:
            raise BuiltinToolError("give either 'json' or 'body', not both")
        timeout = float(arguments.get("timeout_seconds", 30))
        try:
            async with httpx2.AsyncClient(
                transport=transport, timeout=timeout, follow_redirects=True
            ) as client:
                response = await client.request(
                    arguments.get("method", "GET"),
                    url,
                    headers=arguments.get("headers"),
                    params=arguments.get("params"),
                    json=arguments.get("json"),
                    content=arguments.get("body"),
                )
        except httpx2.TimeoutException as error:
            raise BuiltinToolError(f"request to {url} timed out after {timeout:g}s") from error
        except httpx2.HTTPError as error:
            raise BuiltinToolError(f"request to {url} failed: {error}") from error
        result = _describe(response)
        if response.is_error and not arguments.get("allow_error_status", False):
            snippet = response.text[:500]
            raise BuiltinToolError(
                f"HTTP {response.status_code} {response.reason_phrase} from {url}: {snippet}"
            )
        return result

    tool = BuiltinTool(
        "request",
        "Make an HTTP request and return {status, headers, json} (or {status, headers, text} when the body "
        "is not JSON). A non-2xx status fails the step unless allow_error_status is true. Example: "
        '{"method": "GET", "url": "https://api.example.com/items", "params": {"q": "x"}}.',
        SCHEMA,
        request,
        read_only=False,
    )
    return create_server("http", [tool])


def _describe(response: httpx2.Response) -> dict[str, Any]:
    result: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    text = response.text
    if "json" in response.headers.get("content-type", ""):
        try:
            result["json"] = json.loads(text)
            return result
        except ValueError:
            pass
    result["text"] = text[:MAX_BODY_CHARS]
    return result

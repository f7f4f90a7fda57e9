"""The catalog file: downstream MCP servers in Claude Desktop's `mcpServers` format.

    {"mcpServers": {
        "weather": {"command": "python", "args": ["weather.py"], "env": {}, "cwd": "/srv/weather"},
        "remote":  {"url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer …"}}}}

Other top-level keys are ignored, so an existing Claude Desktop or Claude Code config file can be
pointed at as it is. An entry with `"disabled": true` is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from orchestrator_mcp.catalog.connection import ServerConnection

RESERVED = frozenset({"core", "http"})
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CatalogFileError(ValueError):
    """The catalog file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """One downstream server, as declared."""

    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    def connection(self, connect_timeout: float = 30.0) -> ServerConnection:
        if self.command is not None:
            parameters = StdioServerParameters(
                command=self.command, args=self.args, env=self.env or None, cwd=self.cwd
            )
            return ServerConnection(self.name, "stdio", parameters, connect_timeout=connect_timeout)
        url, headers = self.url, self.headers
        assert url is not None
        return ServerConnection(
            self.name, "http", lambda: _http_transport(url, headers), connect_timeout=connect_timeout
        )


@asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    """A streamable HTTP transport that sends `headers` on every request and closes its client."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


def load_catalog_file(path: Path) -> list[ServerEntry]:
    """Read and check a catalog file.

    Raises:
        CatalogFileError: the file is missing, not JSON, or an entry is malformed (all entries'
            problems are listed).
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogFileError(f"catalog file {path}: cannot read it: {error.strerror or error}") from error
    except ValueError as error:
        raise CatalogFileError(f"catalog file {path}: not valid JSON: {error}") from error
    return parse_catalog(raw, str(path))


def parse_catalog(raw: Any, source: str) -> list[ServerEntry]:
    """Check a parsed catalog document; see `load_catalog_file`."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("mcpServers", {}), Mapping):
        raise CatalogFileError(f"catalog file {source}: expected an object with an 'mcpServers' object")
    entries: list[ServerEntry] = []
    problems: list[str] = []
    for name, spec in raw.get("mcpServers", {}).items():
        where = f"mcpServers.{name}"
        if not isinstance(spec, Mapping):
            problems.append(f"{where}: expected an object with 'command' or 'url'")
            continue
        if spec.get("disabled") is True:
            continue
        found = _check_entry(name, spec, where)
        if isinstance(found, ServerEntry):
            entries.append(found)
        else:
            problems.extend(found)
    if problems:
        raise CatalogFileError(f"catalog file {source}: " + "; ".join(problems))
    return entries


def _check_entry(name: str, spec: Mapping[str, Any], where: str) -> ServerEntry | list[str]:
    problems = []
    if not NAME.match(name):
        problems.append(f"{where}: a server name is 1-64 letters, digits, '_' or '-' (no dots)")
    if name in RESERVED:
        problems.append(f"{where}: '{name}' is the name of a built-in server; choose another")
    kind = spec.get("type")
    if kind not in (None, "stdio", "http", "streamable-http", "streamableHttp"):
        problems.append(f"{where}.type: '{kind}' is not supported; use stdio or streamable HTTP")
    command, url = spec.get("command"), spec.get("url")
    if (command is None) == (url is None):
        problems.append(f"{where}: give either 'command' (stdio) or 'url' (streamable HTTP)")
    if command is not None and (not isinstance(command, str) or not command):
        problems.append(f"{where}.command: expected a non-empty string")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        problems.append(f"{where}.url: expected an http:// or https:// URL")
    args = spec.get("args", [])
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        problems.append(f"{where}.args: expected a list of strings")
    for key in ("env", "headers"):
        value = spec.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            problems.append(f"{where}.{key}: expected an object of strings")
    cwd = spec.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        problems.append(f"{where}.cwd: expected a string")
    if problems:
        return problems
    return ServerEntry(
        name=name,
        command=command,
        args=list(args),
        env=dict(spec.get("env", {})),
        cwd=cwd,
        url=url,
        headers=dict(spec.get("headers", {})),
    )

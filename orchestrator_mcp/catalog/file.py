"""The catalog file: downstream MCP servers in Claude Desktop's `mcpServers` format, or Claude Code's.

    {"mcpServers": {
        "weather": {"command": "python", "args": ["weather.py"], "env": {}, "cwd": "/srv/weather"},
        "remote":  {"url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer …"}},
        "hosted":  {"type": "sse", "url": "https://example.com/sse"},
        "files":   {"type": "stdio", "command": "npx", "args": ["…"], "roots": ["file:///home/me/notes"]}}}

`type` is optional: `stdio`, `http` or `streamable-http` (streamable HTTP, also what a `url` without
a type means) or `sse` (the legacy HTTP+SSE transport). Other top-level keys are ignored, so an
existing Claude Desktop or Claude Code config file can be pointed at as it is. An entry with
`"disabled": true` is left out.

Only a file that cannot be read, is not JSON or has no `mcpServers` object stops start-up. An entry
the orchestrator cannot use (unknown type, missing or malformed field, bad name) is kept as an
unusable server, listed unavailable with the reason, and the other entries work.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters

from orchestrator_mcp.catalog.connection import ServerConnection
from orchestrator_mcp.catalog.transports import Downstream, HttpDownstream, SseDownstream, StdioDownstream

logger = logging.getLogger(__name__)

RESERVED = frozenset({"core", "http"})
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TYPES = {"stdio": "stdio", "http": "http", "streamable-http": "http", "streamableHttp": "http", "sse": "sse"}
"""Declared `type` → transport."""


class CatalogFileError(ValueError):
    """The catalog file cannot be used at all; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """One downstream server, as declared; `problem` says why it cannot be used, if it cannot."""

    name: str
    transport: str = "stdio"
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    problem: str | None = None

    def downstream(self) -> Downstream:
        if self.transport == "stdio":
            assert self.command is not None
            parameters = StdioServerParameters(
                command=installed_command(self.command), args=self.args, env=self.env or None, cwd=self.cwd
            )
            return StdioDownstream(self.name, parameters)
        assert self.url is not None
        if self.transport == "sse":
            return SseDownstream(self.url, self.headers)
        return HttpDownstream(self.url, self.headers)

    def connection(self, connect_timeout: float = 30.0) -> ServerConnection:
        if self.problem is not None:
            return ServerConnection(self.name, self.transport, None, unusable=self.problem)
        return ServerConnection(
            self.name, self.transport, self.downstream(), connect_timeout=connect_timeout, roots=self.roots
        )


def installed_command(command: str) -> str:
    """A bare command name that PATH does not find but that is installed beside this interpreter (a
    console script of this environment, such as `orchestrator-mcp-weather-example`) as its full path:
    a client may start the orchestrator from a virtual environment that is not on PATH."""
    if "/" in command or "\\" in command or shutil.which(command) is not None:
        return command
    beside = shutil.which(command, path=str(Path(sys.executable).parent))
    return beside or command


def load_catalog_file(path: Path) -> list[ServerEntry]:
    """Read a catalog file: its usable entries and its unusable ones (each with its problem).

    Raises:
        CatalogFileError: the file cannot be read, is not JSON, or has no `mcpServers` object.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogFileError(f"catalog file {path}: cannot read it: {error.strerror or error}") from error
    except ValueError as error:
        raise CatalogFileError(f"catalog file {path}: not valid JSON: {error}") from error
    return parse_catalog(raw, str(path))


def parse_catalog(raw: Any, source: str) -> list[ServerEntry]:
    """Check a parsed catalog document; see `load_catalog_file`. An entry with a built-in server's
    name is left out (with a warning in the log): it could not be told apart from the built-in."""
    servers = raw.get("mcpServers") if isinstance(raw, Mapping) else None
    if not isinstance(servers, Mapping):
        raise CatalogFileError(f"catalog file {source}: {_no_servers(raw)}")
    entries: list[ServerEntry] = []
    for name, spec in servers.items():
        where = f"mcpServers.{name}"
        if isinstance(spec, Mapping) and spec.get("disabled") is True:
            continue
        if name in RESERVED:
            logger.warning(
                "catalog file %s: %s: '%s' is the name of a built-in server; this entry is left out",
                source,
                where,
                name,
            )
            continue
        entry = read_entry(str(name), spec, where)
        if entry.problem is not None:
            logger.warning("catalog file %s: %s cannot be used: %s", source, where, entry.problem)
        entries.append(entry)
    return entries


def _no_servers(raw: Any) -> str:
    if not isinstance(raw, Mapping):
        return f"expected a JSON object with an 'mcpServers' object, got {type(raw).__name__}"
    if "mcpServers" in raw:
        return "'mcpServers' must be an object of servers by name"
    keys = [key for key in raw if isinstance(key, str)]
    folded = {key.lower().replace("_", "").replace("-", ""): key for key in keys}
    near = folded.get("mcpservers") or next(iter(difflib.get_close_matches("mcpServers", keys, 1, 0.7)), None)
    if near is not None:
        return f"no 'mcpServers' object; found '{near}': did you mean 'mcpServers'?"
    return "no 'mcpServers' object" + (
        f" (keys: {', '.join(sorted(keys)[:10])})" if keys else " (the object is empty)"
    )


def read_entry(name: str, spec: Any, where: str) -> ServerEntry:
    """One entry, usable or with every problem found in it (joined in `problem`)."""
    if not isinstance(spec, Mapping):
        return ServerEntry(name, "unknown", problem=f"{where}: expected an object with 'command' or 'url'")
    problems: list[str] = []
    if not NAME.match(name):
        problems.append(f"{where}: a server name is 1-64 letters, digits, '_' or '-' (no dots)")
    transport = _transport(spec, where, problems)
    command, url = spec.get("command"), spec.get("url")
    if transport == "stdio":
        if command is None:
            problems.append(f"{where}.command: required for a stdio server")
        elif not isinstance(command, str) or not command:
            problems.append(f"{where}.command: expected a non-empty string")
        if url is not None:
            problems.append(f"{where}: give either 'command' (stdio) or 'url' (HTTP), not both")
    elif transport in ("http", "sse"):
        if url is None:
            problems.append(f"{where}.url: required for an {transport} server")
        elif not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"{where}.url: expected an http:// or https:// URL")
        if command is not None:
            problems.append(f"{where}: give either 'command' (stdio) or 'url' (HTTP), not both")
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
    roots = spec.get("roots", [])
    if not isinstance(roots, list) or not all(
        isinstance(root, str) and root.startswith("file://") for root in roots
    ):
        problems.append(f"{where}.roots: expected a list of file:// URIs")
    if problems:
        return ServerEntry(name, transport, problem="; ".join(problems))
    return ServerEntry(
        name=name,
        transport=transport,
        command=command,
        args=list(args),
        env=dict(spec.get("env", {})),
        cwd=cwd,
        url=url,
        headers=dict(spec.get("headers", {})),
        roots=list(roots),
    )


def _transport(spec: Mapping[str, Any], where: str, problems: list[str]) -> str:
    """The entry's transport: its `type`, else stdio for a `command` and streamable HTTP for a `url`."""
    declared = spec.get("type")
    if declared is None:
        if spec.get("command") is None and spec.get("url") is None:
            problems.append(f"{where}: give either 'command' (stdio) or 'url' (HTTP)")
            return "unknown"
        return "stdio" if spec.get("command") is not None else "http"
    if isinstance(declared, str) and declared in TYPES:
        return TYPES[declared]
    problems.append(
        f"{where}.type: '{declared}' is not supported; expected stdio, http, streamable-http or sse"
    )
    return "unknown"

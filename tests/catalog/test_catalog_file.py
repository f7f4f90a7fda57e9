"""The catalog file: Claude Desktop's and Claude Code's forms, checked entry by entry; an entry in
error is kept, unusable, with its reason; only a file that is not a catalog stops start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator_mcp.catalog.file import CatalogFileError, load_catalog_file, parse_catalog


def test_stdio_and_http_entries_are_read_and_other_keys_ignored(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(
        json.dumps(
            {
                "theme": "dark",
                "mcpServers": {
                    "weather": {"command": "python", "args": ["w.py"], "env": {"K": "v"}, "cwd": "/srv"},
                    "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer t"}},
                },
            }
        )
    )
    weather, remote = load_catalog_file(path)
    assert (weather.name, weather.transport, weather.args, weather.env, weather.cwd) == (
        "weather",
        "stdio",
        ["w.py"],
        {"K": "v"},
        "/srv",
    )
    assert (remote.transport, remote.url, remote.headers) == (
        "http",
        "https://example.com/mcp",
        {"Authorization": "Bearer t"},
    )
    assert weather.problem is None and remote.problem is None


@pytest.mark.parametrize(
    ("spec", "transport"),
    [
        ({"type": "stdio", "command": "npx", "args": ["-y", "server"]}, "stdio"),
        ({"type": "http", "url": "https://example.com/mcp"}, "http"),
        ({"type": "streamable-http", "url": "https://example.com/mcp"}, "http"),
        ({"type": "sse", "url": "https://example.com/sse"}, "sse"),
        ({"url": "https://example.com/mcp"}, "http"),
    ],
)
def test_claude_codes_types_are_read(spec: dict[str, Any], transport: str) -> None:
    (entry,) = parse_catalog({"mcpServers": {"s": spec}}, "cat.json")
    assert (entry.transport, entry.problem) == (transport, None)
    assert entry.connection().transport == transport


def test_an_entrys_roots_are_kept_when_they_are_file_uris() -> None:
    entries = parse_catalog(
        {
            "mcpServers": {
                "good": {"command": "x", "roots": ["file:///home/me/notes"]},
                "bad": {"command": "x", "roots": ["/home/me/notes"]},
            }
        },
        "cat.json",
    )
    good, bad = entries
    assert good.roots == ["file:///home/me/notes"]
    assert bad.problem == "mcpServers.bad.roots: expected a list of file:// URIs"


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ({"a.b": {"command": "x"}}, "mcpServers.a.b: a server name"),
        ({"w": {}}, "mcpServers.w: give either 'command'"),
        ({"w": {"command": "x", "url": "http://h/mcp"}}, "mcpServers.w: give either"),
        ({"w": {"command": 3}}, "mcpServers.w.command: expected a non-empty string"),
        ({"w": {"command": "x", "args": "a b"}}, "mcpServers.w.args: expected a list of strings"),
        ({"w": {"command": "x", "env": {"A": 1}}}, "mcpServers.w.env: expected an object of strings"),
        ({"w": {"url": "ftp://h"}}, "mcpServers.w.url: expected an http"),
        ({"w": {"url": "http://h", "type": "websocket"}}, "mcpServers.w.type: 'websocket' is not supported"),
        ({"w": {"type": "sse"}}, "mcpServers.w.url: required for an sse server"),
        ({"w": {"type": "stdio", "url": "http://h"}}, "mcpServers.w.command: required for a stdio server"),
        ({"w": "python w.py"}, "mcpServers.w: expected an object"),
    ],
)
def test_a_malformed_entry_is_kept_unusable_with_its_reason(
    servers: dict[str, object], expected: str
) -> None:
    (entry,) = parse_catalog({"mcpServers": servers}, "cat.json")
    assert entry.problem is not None and expected in entry.problem
    connection = entry.connection()
    assert (connection.state, connection.available, connection.error) == ("unavailable", False, entry.problem)


def test_one_bad_entry_leaves_the_others_usable() -> None:
    entries = parse_catalog(
        {
            "mcpServers": {
                "a": {"command": "x"},
                "b": {"type": "ws", "url": "ws://h"},
                "c": {"url": "http://h"},
            }
        },
        "cat.json",
    )
    usable = [(entry.name, entry.problem is None) for entry in entries]
    assert usable == [("a", True), ("b", False), ("c", True)]


def test_an_entry_named_like_a_built_in_server_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    entries = parse_catalog({"mcpServers": {"core": {"command": "x"}, "w": {"command": "x"}}}, "cat.json")
    assert [entry.name for entry in entries] == ["w"]
    assert "'core' is the name of a built-in server; this entry is left out" in caplog.text


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"mcpServer": {}}, "no 'mcpServers' object; found 'mcpServer': did you mean 'mcpServers'?"),
        ({"mcp_servers": {}}, "no 'mcpServers' object; found 'mcp_servers': did you mean 'mcpServers'?"),
        ({"servers": {}}, "no 'mcpServers' object; found 'servers': did you mean 'mcpServers'?"),
        ({"theme": "dark", "globalShortcut": ""}, "no 'mcpServers' object (keys: globalShortcut, theme)"),
        ({}, "no 'mcpServers' object (the object is empty)"),
        ({"mcpServers": []}, "'mcpServers' must be an object of servers by name"),
        ([], "expected a JSON object with an 'mcpServers' object, got list"),
    ],
)
def test_a_document_without_mcp_servers_is_an_error_naming_the_near_miss(
    document: Any, expected: str
) -> None:
    with pytest.raises(CatalogFileError) as error:
        parse_catalog(document, "cat.json")
    assert str(error.value) == f"catalog file cat.json: {expected}"


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="cannot read it"):
        load_catalog_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CatalogFileError, match="not valid JSON"):
        load_catalog_file(bad)


@pytest.mark.slow  # starts `orchestrator-mcp serve`
def test_the_server_refuses_to_start_on_a_file_that_is_not_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"mcpServer": {"weather": {"command": "python"}}}))
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator_mcp", "serve", "--catalog", str(path)],
        env={**os.environ, "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2
    assert "found 'mcpServer': did you mean 'mcpServers'?" in done.stderr
    assert "Traceback" not in done.stderr

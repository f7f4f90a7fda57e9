"""The catalog file: Claude Desktop's format, checked entry by entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
                    "remote": {
                        "type": "http",
                        "url": "https://example.com/mcp",
                        "headers": {"Authorization": "Bearer t"},
                    },
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


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ({"a.b": {"command": "x"}}, "mcpServers.a.b: a server name"),
        ({"core": {"command": "x"}}, "mcpServers.core: 'core' is the name of a built-in server"),
        ({"w": {}}, "mcpServers.w: give either 'command'"),
        ({"w": {"command": "x", "url": "http://h/mcp"}}, "mcpServers.w: give either"),
        ({"w": {"command": 3}}, "mcpServers.w.command: expected a non-empty string"),
        ({"w": {"command": "x", "args": "a b"}}, "mcpServers.w.args: expected a list of strings"),
        ({"w": {"command": "x", "env": {"A": 1}}}, "mcpServers.w.env: expected an object of strings"),
        ({"w": {"url": "ftp://h"}}, "mcpServers.w.url: expected an http"),
        ({"w": {"url": "http://h", "type": "sse"}}, "mcpServers.w.type: 'sse' is not supported"),
        ({"w": "python w.py"}, "mcpServers.w: expected an object"),
    ],
)
def test_a_malformed_entry_is_named_in_the_error(servers: dict[str, object], expected: str) -> None:
    with pytest.raises(CatalogFileError) as error:
        parse_catalog({"mcpServers": servers}, "cat.json")
    assert expected in str(error.value)
    assert str(error.value).startswith("catalog file cat.json: ")


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="cannot read it"):
        load_catalog_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CatalogFileError, match="not valid JSON"):
        load_catalog_file(bad)
    with pytest.raises(CatalogFileError, match="'mcpServers' object"):
        parse_catalog({"mcpServers": []}, "x")


@pytest.mark.slow  # starts `orchestrator-mcp serve`
def test_the_server_refuses_to_start_on_a_malformed_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"mcpServers": {"bad": {"command": ""}}}))
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
    assert "mcpServers.bad.command: expected a non-empty string" in done.stderr
    assert "Traceback" not in done.stderr

"""No private MCP SDK access outside `server/sdk.py`: `.ci/sdk_privates.py` on this checkout, and on
snippets that show what it catches (and what it leaves alone)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_scanner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdk_privates", ROOT / ".ci" / "sdk_privates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


scanner = load_scanner()
NAMES: frozenset[str] = scanner.names_to_flag(ROOT)

REINTRODUCED = """

def again(mcp: MCPServer[Orchestrator]) -> None:
    mcp._lowlevel_server.add_request_handler("x", X, h)
"""


def flagged(source: str) -> list[str]:
    return [access.what for access in scanner.scan(source, "snippet.py", NAMES)]


def test_this_checkout_makes_private_sdk_accesses_only_in_the_seam() -> None:
    found = scanner.scan_project(ROOT)
    assert found == [], "\n".join(str(access) for access in found)


def test_a_reintroduced_lowlevel_server_in_app_py_fails_the_check(tmp_path: Path) -> None:
    app = (ROOT / "orchestrator_mcp/server/app.py").read_text()
    for path in ("orchestrator_mcp/server/app.py", "orchestrator_mcp/server/sdk.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(app + REINTRODUCED)
    found = scanner.scan_project(tmp_path)
    assert [(access.path, access.what) for access in found] == [
        ("orchestrator_mcp/server/app.py", "mcp._lowlevel_server")  # and not the same line in sdk.py
    ]
    assert scanner.main(["sdk_privates.py", str(tmp_path)]) == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("mcp._lowlevel_server.run(r, w, o)", ["mcp._lowlevel_server"]),
        ("lowlevel = served.mcp._lowlevel_server", ["served.mcp._lowlevel_server"]),
        ("for t in manager._server_instances.values(): pass", ["manager._server_instances"]),
        ("conn = ctx.session._connection", ["ctx.session._connection"]),
        ("conn = self.session._connection", ["self.session._connection"]),
        ("conn = getattr(session, '_connection')", ["getattr(session, '_connection')"]),
        ("lock = manager._session_creation_lock", ["manager._session_creation_lock"]),  # any SDK private
        (
            "from mcp.shared._stream_protocols import ReadStream",
            ["from mcp.shared._stream_protocols import ReadStream"],
        ),
        (
            "from mcp.server.lowlevel.server import _ParamsT",
            ["from mcp.server.lowlevel.server import _ParamsT"],
        ),
        ("import mcp.shared._context_streams", ["import mcp.shared._context_streams"]),
        ("import mcp.server.stdio as stdio\nstdio._whatever", ["stdio._whatever"]),
        ("import mcp_types\nmcp_types._anything", ["mcp_types._anything"]),
    ],
)
def test_private_sdk_accesses_are_flagged(source: str, expected: list[str]) -> None:
    assert flagged(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "self._connection = connection",  # our own object's attribute
        "cls._lowlevel_server = None",
        "engine._runs = runs",  # a private name this project defines
        "await engine._next_deadline(now, None)",
        "row._mapping",  # SQLAlchemy's public-by-convention names are not the SDK's
        "os._exit(3)",
        "from tool_catalog._server import create_server",  # our own private module
        "from mcp.server.mcpserver import MCPServer\nMCPServer.__init__",  # dunders are public
        "from mcp.server.mcpserver import MCPServer\nmcp.completion()",
    ],
)
def test_our_own_privates_and_public_sdk_names_pass(source: str) -> None:
    assert flagged(source) == []

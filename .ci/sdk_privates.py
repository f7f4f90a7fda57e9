"""Fail on a private MCP SDK access outside `orchestrator_mcp/server/sdk.py`, the one module allowed
to make them (and `tests/server/test_sdk_seam.py`, which checks that they still exist).

Usage: sdk_privates.py [root]   (exit 1 and one line per access found; the tests run it too)

A private access is, outside `self`/`cls`:
- importing a private module or name of the SDK (`from mcp.shared._stream_protocols import ...`,
  `from mcp.server.lowlevel.server import _ParamsT`, `import mcp._x`);
- any `_name` attribute of something imported from the SDK (`mcp_types._x`, `stdio._claims`);
- `obj._name` (or `getattr(obj, "_name")`) where `_name` is a name the SDK keeps private: the known
  handles below, and every private attribute, method, function or class the installed SDK defines,
  except a name this project defines for itself (so `engine._runs` in a test stays ours).
Dunder names are never private.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SDK_PACKAGES = ("mcp", "mcp_types")
SCANNED = ("orchestrator_mcp", "tool_catalog", "tests", "bench", "examples")
ALLOWED_FILES = frozenset({"orchestrator_mcp/server/sdk.py", "tests/server/test_sdk_seam.py"})
KNOWN = frozenset(
    {
        "_lowlevel_server",  # MCPServer -> lowlevel Server
        "_server_instances",  # StreamableHTTPSessionManager -> open transports
        "_session_owners",
        "_session_manager",
        "_connection",  # ServerSession / Context -> Connection
        "_session",
        "_request_outbound",
        "_request_handlers",  # lowlevel Server handler tables
        "_notification_handlers",
        "_tool_manager",  # MCPServer's managers
        "_resource_manager",
        "_prompt_manager",
        "_subscriptions",
        "_token_verifier",
        "_custom_starlette_routes",
    }
)
"""Private SDK names flagged even if this project happens to use the same name for its own."""
RECEIVERS_OF_OUR_OWN = frozenset({"self", "cls"})


@dataclass(frozen=True)
class Access:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: private SDK access {self.what}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_sdk_module(module: str) -> bool:
    return module.split(".")[0] in SDK_PACKAGES


def defined_private_names(trees: Iterable[ast.AST]) -> set[str]:
    """Private names the given code defines: functions, classes, assignments and `x._name = ...`."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {name for name in names if is_private(name)}


def parse_all(files: Iterable[Path]) -> Iterator[ast.AST]:
    for file in files:
        try:
            yield ast.parse(file.read_text(encoding="utf-8"), str(file))
        except (SyntaxError, UnicodeDecodeError):
            continue


def sdk_private_names() -> set[str]:
    """Every private name the installed SDK defines."""
    files: list[Path] = []
    for package in SDK_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            files += Path(location).rglob("*.py")
    return defined_private_names(parse_all(files))


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def scan(source: str, path: str, private_names: frozenset[str]) -> list[Access]:
    """The private SDK accesses in one module's source; `private_names` are the attribute names
    treated as the SDK's (see `names_to_flag`)."""
    tree = ast.parse(source, path)
    found: list[Access] = []
    sdk_aliases: set[str] = set()  # local names bound to something imported from the SDK

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not is_sdk_module(alias.name):
                    continue
                sdk_aliases.add(alias.asname or alias.name.split(".")[0])
                if any(is_private(part) for part in alias.name.split(".")):
                    found.append(Access(path, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not is_sdk_module(node.module):
                continue
            private_module = any(is_private(part) for part in node.module.split("."))
            for alias in node.names:
                sdk_aliases.add(alias.asname or alias.name)
                if private_module or is_private(alias.name):
                    found.append(Access(path, node.lineno, f"from {node.module} import {alias.name}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            root = _root_name(node.value)
            if root in RECEIVERS_OF_OUR_OWN and isinstance(node.value, ast.Name):
                continue
            if root in sdk_aliases or node.attr in private_names:
                found.append(Access(path, node.lineno, f"{ast.unparse(node)}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and (node.args[1].value in private_names or _root_name(node.args[0]) in sdk_aliases)
        ):
            found.append(Access(path, node.lineno, ast.unparse(node)))
    return sorted(found, key=lambda access: access.line)


def project_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for top in SCANNED:
        if (root / top).is_dir():
            files += sorted((root / top).rglob("*.py"))
    return files


def names_to_flag(root: Path) -> frozenset[str]:
    """The SDK's private names, minus those this project defines for itself, plus the known ones."""
    ours = defined_private_names(parse_all(project_files(root)))
    return frozenset((sdk_private_names() - ours) | KNOWN)


def scan_project(root: Path) -> list[Access]:
    """Every private SDK access in the scanned directories, outside the allowed files."""
    private_names = names_to_flag(root)
    found: list[Access] = []
    for file in project_files(root):
        path = file.relative_to(root).as_posix()
        if path not in ALLOWED_FILES:
            found += scan(file.read_text(encoding="utf-8"), path, private_names)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    found = scan_project(root)
    for access in found:
        print(access)
    if found:
        print(f"{len(found)} private SDK access(es): go through orchestrator_mcp/server/sdk.py instead")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

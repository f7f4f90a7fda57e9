"""The worker: the engine alone, one per SQLite database, kept alive in the background by `serve`
over stdio and at login by a user service (SPEC §13).

- lock.py: the lock file that says which process is a database's worker;
- engine_alone.py: store, catalog and engine without an MCP server;
- commands.py: `orchestrator-mcp worker [--status | --stop]`;
- background.py: starting a detached worker from `serve`;
- units.py: `orchestrator-mcp service install | uninstall` (systemd user unit, launchd agent).
"""

from orchestrator_mcp.worker.commands import run_worker_command

__all__ = ["run_worker_command"]

"""`orchestrator-mcp service install | uninstall`: run the worker at login, as a systemd user unit
(Linux) or a launchd agent (macOS), on the database and catalog of the settings.

Writing the file is all `install` does: it says which command enables it, and never runs
`systemctl` or `launchctl` itself (the unit's name is per user, not per database or checkout).
The unit runs `python -m orchestrator_mcp worker` with this installation's interpreter, so it needs
no PATH; the settings given by variables or flags go into its environment. Secrets do not: on
Linux the unit reads `~/.config/orchestrator-mcp/worker.env` if it exists (`ORCH_SECRET_NAME=value`
lines, kept private by its owner).
"""

from __future__ import annotations

import os
import plistlib
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator_mcp.command_line import fail
from orchestrator_mcp.config import Settings
from orchestrator_mcp.worker.commands import stop_timeout
from orchestrator_mcp.worker.lock import sqlite_file

UNIT_NAME = "orchestrator-mcp-worker.service"
AGENT_LABEL = "orchestrator-mcp.worker"
RESTART_SECONDS = 10


@dataclass(frozen=True)
class WorkerService:
    """How the worker is started: its command line and its environment (the settings)."""

    command: list[str]
    environment: dict[str, str]
    stop_seconds: int
    """How long the service manager waits after SIGTERM: the shutdown grace and a margin."""


def worker_service(settings: Settings) -> WorkerService:
    """The worker as the settings describe it: this interpreter, and every setting given explicitly
    (by a variable or a flag), the database and catalog as absolute paths."""
    environment: dict[str, str] = {}
    for name in sorted(settings.model_fields_set | {"database_url"}):
        value = getattr(settings, name)
        if value is not None:
            environment[f"ORCH_{name.upper()}"] = str(value)
    database = sqlite_file(settings.database_url)
    if database is not None:
        environment["ORCH_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    if settings.catalog is not None:
        environment["ORCH_CATALOG"] = str(settings.catalog.absolute())
    environment.pop("ORCH_BACKGROUND_WORKER", None)  # means nothing to a worker
    command = [sys.executable, "-m", "orchestrator_mcp", "worker"]
    return WorkerService(command, environment, int(stop_timeout(settings)))


# -- systemd ------------------------------------------------------------------------------------


def systemd_word(text: str) -> str:
    """One word of a systemd command line or assignment, quoted: `%` starts a specifier, `\\` and
    `"` are escapes inside quotes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def systemd_unit(service: WorkerService) -> str:
    environment = "".join(
        f"Environment={systemd_word(f'{key}={value}')}\n" for key, value in service.environment.items()
    )
    return (
        "[Unit]\n"
        "Description=orchestrator-mcp worker: fires scheduled tasks with no MCP client connected\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={' '.join(systemd_word(word) for word in service.command)}\n"
        f"{environment}"
        "EnvironmentFile=-%h/.config/orchestrator-mcp/worker.env\n"
        "Restart=on-failure\n"
        f"RestartSec={RESTART_SECONDS}\n"
        f"TimeoutStopSec={service.stop_seconds}\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def systemd_directory() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


# -- launchd ------------------------------------------------------------------------------------


def launchd_plist(service: WorkerService, log: Path) -> bytes:
    agent = {
        "Label": AGENT_LABEL,
        "ProgramArguments": service.command,
        "EnvironmentVariables": service.environment,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # started again if it fails, not after a clean stop
        "ThrottleInterval": RESTART_SECONDS,
        "ExitTimeOut": service.stop_seconds,
        "ProcessType": "Background",
        "StandardOutPath": str(log),
        "StandardErrorPath": str(log),
    }
    return plistlib.dumps(agent)


def launchd_directory() -> Path:
    return Path.home() / "Library" / "LaunchAgents"


# -- the command --------------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> None:
    """Write `path` readable by its owner only (it may hold a database password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(path, 0o600)


def run_service_command(action: str, settings: Settings) -> int:
    if sys.platform == "darwin":
        return install_agent(settings) if action == "install" else uninstall_agent()
    if sys.platform.startswith("linux"):
        return install_unit(settings) if action == "install" else uninstall_unit()
    fail(f"service {action}: only systemd (Linux) and launchd (macOS) are supported; run `worker` yourself")


def install_unit(settings: Settings) -> int:
    path = systemd_directory() / UNIT_NAME
    existed = path.exists()
    write_private(path, systemd_unit(worker_service(settings)).encode())
    print(f"{'Replaced' if existed else 'Wrote'} {path}")
    print("Start it now and at every login with:")
    print(f"    systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}")
    print("Keep it running while you are logged out: loginctl enable-linger")
    print("Its log: journalctl --user -u orchestrator-mcp-worker")
    print("Secrets (ORCH_SECRET_NAME=value lines) go in ~/.config/orchestrator-mcp/worker.env (chmod 600).")
    return 0


def uninstall_unit() -> int:
    path = systemd_directory() / UNIT_NAME
    if (systemd_directory() / "default.target.wants" / UNIT_NAME).exists():
        fail(
            f"service uninstall: it is enabled; first run: systemctl --user disable --now {UNIT_NAME}", code=1
        )
    if not path.exists():
        print(f"Nothing to remove: {path} does not exist.")
        return 0
    path.unlink()
    print(f"Removed {path}; run: systemctl --user daemon-reload")
    return 0


def install_agent(settings: Settings) -> int:
    path = launchd_directory() / f"{AGENT_LABEL}.plist"
    log = Path.home() / "Library" / "Logs" / "orchestrator-mcp" / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)  # launchd creates the file, not its folder
    existed = path.exists()
    write_private(path, launchd_plist(worker_service(settings), log))
    print(f"{'Replaced' if existed else 'Wrote'} {path}")
    print("Start it now and at every login with:")
    print(f'    launchctl bootstrap gui/$(id -u) "{path}"')
    print(f"Its log: {log}")
    print("Secrets: add ORCH_SECRET_NAME keys to its EnvironmentVariables.")
    return 0


def uninstall_agent() -> int:
    path = launchd_directory() / f"{AGENT_LABEL}.plist"
    if not path.exists():
        print(f"Nothing to remove: {path} does not exist.")
        return 0
    path.unlink()
    print(f"Removed {path}. If it is loaded, also run: launchctl bootout gui/$(id -u)/{AGENT_LABEL}")
    return 0

"""`service install | uninstall`: the systemd user unit and the launchd agent that run the worker at
login, checked as files, by `systemd-analyze verify` where it runs, and by starting the worker the
way the unit does."""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator_mcp.config import Settings
from orchestrator_mcp.worker.lock import WorkerLock
from orchestrator_mcp.worker.units import launchd_plist, systemd_unit, systemd_word, worker_service
from tests.cli.support import cli, one_line_error
from tests.reliability.support import ServerProcess, ready


def test_the_unit_runs_this_interpreters_worker_with_the_settings_given(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'o.db'}",
        catalog=tmp_path / "catalog.json",
        max_concurrent_runs=3,
        shutdown_grace_seconds=15,
    )
    unit = systemd_unit(worker_service(settings))
    lines = unit.splitlines()
    assert f'ExecStart="{sys.executable}" "-m" "orchestrator_mcp" "worker"' in lines
    assert f'Environment="ORCH_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / "o.db"}"' in lines
    assert f'Environment="ORCH_CATALOG={tmp_path / "catalog.json"}"' in lines
    assert 'Environment="ORCH_MAX_CONCURRENT_RUNS=3"' in lines
    assert "TimeoutStopSec=35" in lines  # the grace, and a margin for the rest of the shutdown
    assert "EnvironmentFile=-%h/.config/orchestrator-mcp/worker.env" in lines
    assert "Restart=on-failure" in lines and "WantedBy=default.target" in lines
    assert not [line for line in lines if "ORCH_LOG_LEVEL" in line]  # only settings given explicitly


def test_odd_characters_are_quoted_for_systemd() -> None:
    assert systemd_word('/home/a b/50% "x"\\y') == '"/home/a b/50%% \\"x\\"\\\\y"'
    assert shlex.split(systemd_word('/home/a b/"x"\\y')) == ['/home/a b/"x"\\y']


def test_the_launchd_agent_runs_the_same_worker_at_load_and_again_after_a_failure(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'o.db'}")
    agent = plistlib.loads(launchd_plist(worker_service(settings), tmp_path / "worker.log"))
    assert agent["Label"] == "orchestrator-mcp.worker"
    assert agent["ProgramArguments"] == [sys.executable, "-m", "orchestrator_mcp", "worker"]
    assert agent["EnvironmentVariables"] == {"ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"}
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["StandardErrorPath"] == str(tmp_path / "worker.log")


def unit_command(unit: str) -> tuple[list[str], dict[str, str]]:
    """ExecStart and Environment of a unit as systemd reads them (quotes, escapes, `%%`)."""
    command: list[str] = []
    environment: dict[str, str] = {}
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        words = [word.replace("%%", "%") for word in shlex.split(value)] if value else []
        if key == "ExecStart":
            command = words
        elif key == "Environment":
            name, _, setting = words[0].partition("=")
            environment[name] = setting
    return command, environment


def start_as_the_unit_does(command: list[str], env: dict[str, str], folder: Path) -> ServerProcess:
    log = folder / "worker.stderr"
    with log.open("wb") as sink:
        worker = ServerProcess(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink
        )
    worker.log = log
    return worker


def verify(unit: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` as the user's manager reads it, else as the system's would."""
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    done = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "Failed to initialize manager" in done.stderr:  # no user manager can start here
        done = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
    return done


@pytest.mark.slow  # spawns processes
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd user units are for Linux")
async def test_install_writes_a_unit_that_verifies_and_starts_the_worker_then_uninstall_removes_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    database = tmp_path / "service.db"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": "", "ORCH_DATABASE_URL": f"sqlite:///{database}"}
    installed = cli("service", "install", "--max-concurrent-runs", "2", env=env)
    assert installed.returncode == 0, installed.stderr
    unit_file = home / ".config" / "systemd" / "user" / "orchestrator-mcp-worker.service"
    assert f"Wrote {unit_file}" in installed.stdout
    assert "systemctl --user enable --now orchestrator-mcp-worker.service" in installed.stdout
    assert unit_file.stat().st_mode & 0o777 == 0o600

    if shutil.which("systemd-analyze"):
        verified = verify(unit_file, home)
        assert verified.returncode == 0 and verified.stderr == "", verified.stderr

    # Started as the unit starts it: its command and environment alone, stdin at the null device.
    command, environment = unit_command(unit_file.read_text())
    worker = start_as_the_unit_does(
        command, {"PATH": "/usr/bin:/bin", "HOME": str(home), **environment}, tmp_path
    )
    try:
        await ready(worker)
        record = WorkerLock(database).holder()
        assert record is not None and (record.pid, record.mode) == (worker.pid, "foreground")
        assert "worker mode foreground worker" in worker.log.read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)

    wants = unit_file.parent / "default.target.wants"
    wants.mkdir()
    (wants / unit_file.name).symlink_to(unit_file)  # what `systemctl --user enable` leaves
    refused = one_line_error(cli("service", "uninstall", env=env), code=1)
    assert "systemctl --user disable --now orchestrator-mcp-worker.service" in refused
    (wants / unit_file.name).unlink()
    removed = cli("service", "uninstall", env=env)
    assert removed.returncode == 0 and f"Removed {unit_file}" in removed.stdout
    assert not unit_file.exists()
    assert "Nothing to remove" in cli("service", "uninstall", env=env).stdout

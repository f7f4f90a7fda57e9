"""The command line for real: `token` subcommands and `serve --transport http` as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.conftest import call_ok
from tests.http.support import ALL, connect, free_port

pytestmark = pytest.mark.slow  # spawns server processes


def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator_mcp", *args],
        env={**os.environ, "ORCH_DATABASE_URL": database_url, "ORCH_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_create_prints_the_token_last_list_hides_it_and_revoke_ends_it(database_url: str) -> None:
    created = cli(database_url, "token", "create", "--principal", "alice", "--scopes", "tasks:read,runs:read")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("orch_") and len(secret) > 40
    token_id = created.stdout.split("Created token ")[1].split(" ")[0]

    listed = cli(database_url, "token", "list")
    assert listed.returncode == 0
    assert token_id in listed.stdout and "alice" in listed.stdout and "runs:read,tasks:read" in listed.stdout
    assert secret not in listed.stdout and "active" in listed.stdout

    assert cli(database_url, "token", "revoke", token_id).returncode == 0
    assert "revoked" in cli(database_url, "token", "list").stdout
    again = cli(database_url, "token", "revoke", token_id)
    assert again.returncode == 1 and "not found" in again.stderr

    bad = cli(database_url, "token", "create", "--principal", "alice", "--scopes", "tasks:read,root")
    assert bad.returncode == 2 and "unknown scope(s) root" in bad.stderr


def test_no_auth_is_refused_on_a_host_other_machines_can_reach(database_url: str) -> None:
    refused = cli(database_url, "serve", "--transport", "http", "--no-auth", "--host", "0.0.0.0")
    assert refused.returncode == 2
    assert "--no-auth is allowed on a loopback host only" in refused.stderr


def test_a_database_that_cannot_be_reached_is_one_line_and_exit_1() -> None:
    nowhere = f"postgresql+asyncpg://orchestrator@127.0.0.1:{free_port()}/orchestrator"
    for command in (["serve"], ["token", "list"]):
        failed = cli(nowhere, *command)
        assert failed.returncode == 1
        assert failed.stderr.startswith("orchestrator-mcp: cannot use the database at postgresql+asyncpg://")
        assert "Traceback" not in failed.stderr and "Connect call failed" in failed.stderr


def start_server(database_url: str, port: int, stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as sink:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator_mcp", "serve", "--transport", "http", "--port", str(port)],
            env={**os.environ, "ORCH_DATABASE_URL": database_url, "ORCH_LOG_FORMAT": "json"},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


async def wait_ready(base_url: str) -> None:
    """Until /health/ready says 200; a minute is a bound for a loaded machine, not an expectation."""
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(60):
            while True:
                try:
                    if (await http.get(f"{base_url}/health/ready")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.1)


async def test_serve_http_answers_logs_json_and_exits_0_on_sigterm(database_url: str, tmp_path: Path) -> None:
    created = cli(database_url, "token", "create", "--principal", "alice", "--scopes", ALL)
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    log = tmp_path / "stderr.log"
    process = start_server(database_url, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base)
        async with connect(f"{base}/mcp", token) as client:
            noop = [{"id": "n", "uses": "core.noop"}]
            task = await call_ok(
                client, "schedule_task", {"title": "t", "schedule": {"kind": "manual"}, "pipeline": noop}
            )
            run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
            assert run["status"] == "succeeded"
            # Still connected (a session with its open GET stream): the shutdown must not wait for it.
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(10):
                assert await anyio.to_thread.run_sync(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (ready,) = [line["message"] for line in lines if " ready: " in line["message"]]
    assert f"transport http at {base}/mcp" in ready and "worker mode off" in ready
    calls = [line for line in lines if line.get("tool") == "run_now"]
    assert calls and calls[0]["principal"] == "alice" and calls[0]["run_id"] == run["id"]
    assert calls[0]["outcome"] == "ok" and calls[0]["duration_ms"] >= 0
    assert any("SIGTERM" in line["message"] for line in lines)
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]


def test_serve_http_on_a_port_already_taken_exits_1_with_a_message(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = cli(database_url, "serve", "--transport", "http", "--no-auth", "--port", str(port))
    assert failed.returncode == 1
    assert f"could not serve on http://127.0.0.1:{port}" in failed.stderr

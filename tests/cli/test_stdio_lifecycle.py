"""`serve` over stdio ends on its own: at once when stdin is at end of file, and on SIGTERM at any
moment of its life, start-up included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.support import READY, ServerProcess, kill, ready, server_env, start

pytestmark = pytest.mark.slow  # spawns server processes

EXIT_WITHIN = 10
"""Seconds a server may take to end after its signal: the contract's bound."""


def exit_code(process: subprocess.Popen[bytes], within: float) -> int:
    """The process's exit status; fails if it still runs after `within` seconds."""
    return process.wait(within)


def test_serve_with_stdin_at_dev_null_serves_then_exits_0(tmp_path: Path) -> None:
    """What nohup, systemd and `docker run` without `-i` give: end of file at once."""
    log = tmp_path / "stderr.log"
    with open(os.devnull, "rb") as null, log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_mcp", "serve"],
            stdin=null,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=server_env(tmp_path / "null.db"),
        )
    try:
        code = exit_code(process, 60)  # start-up included: a bound for a loaded machine
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = log.read_text()
    assert code == 0, text
    assert READY in text and "Traceback" not in text


@pytest.mark.parametrize("after", [0.3, 1.0, 2.0])
def test_sigterm_at_any_moment_of_start_up_ends_serve_within_10_s(tmp_path: Path, after: float) -> None:
    process = start(tmp_path / "early.db", ORCH_LOG_LEVEL="INFO")
    try:
        time.sleep(after)  # the moment of the signal, not a wait for anything
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = exit_code(process, EXIT_WITHIN)
        took = time.monotonic() - began
    finally:
        if process.poll() is None:
            kill(process)
        else:
            assert process.stdin is not None
            process.stdin.close()
    text = process.log.read_text()
    assert code == 0, text
    assert took < EXIT_WITHIN
    assert "Traceback" not in text


async def test_sigterm_once_ready_ends_serve_with_exit_0(tmp_path: Path) -> None:
    process: ServerProcess = start(tmp_path / "ready.db", ORCH_LOG_LEVEL="INFO")
    try:
        await ready(process)
        process.send_signal(signal.SIGTERM)
        code = exit_code(process, EXIT_WITHIN)
    finally:
        if process.poll() is None:
            kill(process)
        else:
            assert process.stdin is not None
            process.stdin.close()
    assert code == 0
    assert "received SIGTERM" in process.log.read_text()

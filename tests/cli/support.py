"""Running the command line as a user does: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`orchestrator-mcp ARGS` with `env` over this environment, stdin at end of file."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator_mcp", *args],
        env={**os.environ, "ORCH_LOG_LEVEL": "WARNING", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one line a refused command wrote to stderr, checked: exit `code`, no traceback."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("orchestrator-mcp: ")
    return lines[0]

"""examples/demo.py runs end to end, as the README shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the demo, which spawns a server process

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_schedules_a_task_and_prints_two_runs_logs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("\nrun run_") == 2
    assert out.count(": succeeded") == 2
    assert "[step forecast] calling weather.get_forecast" in out
    assert "run succeeded" in out

"""Real downstream servers for the catalog's tests: the faulty server's paths, HTTP server processes
that can be stopped and started again on the same port, and a way to run a pipeline and read its log."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from mcp import Client

from tests.conftest import call_ok

ROOT = Path(__file__).resolve().parents[2]
FAULTY = str(ROOT / "tests" / "catalog" / "faulty_server.py")
WEATHER = str(ROOT / "examples" / "weather_server.py")
START_BOUND_SECONDS = 60
"""A bound for a loaded machine, not an expectation."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """The faulty server over HTTP (`--http`, `--sse`, with `extra` flags) on one port, as a real
    process that a test may stop and start again."""

    def __init__(self, flag: str, *extra: str) -> None:
        self.port = free_port()
        self.command = [sys.executable, FAULTY, flag, str(self.port), *extra]
        self.process: Process | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        """Start it and wait until it accepts connections."""
        process = await anyio.open_process(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.process = process
        with anyio.fail_after(START_BOUND_SECONDS):
            while True:
                try:
                    await (await anyio.connect_tcp("127.0.0.1", self.port)).aclose()
                    return
                except OSError:
                    if process.returncode is not None:
                        raise RuntimeError(f"{self.command} exited at start") from None
                    await anyio.sleep(0.05)

    async def stop(self) -> None:
        """Stop it and wait until it has exited."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        with anyio.fail_after(START_BOUND_SECONDS):
            await process.wait()


async def run(client: Client, pipeline: list[dict[str, Any]], **task: Any) -> dict[str, Any]:
    """Schedule a manual task with `pipeline` and run it now, waiting for its end."""
    created = await call_ok(
        client, "schedule_task", {"title": "t", "schedule": {"kind": "manual"}, "pipeline": pipeline, **task}
    )
    return await call_ok(
        client, "run_now", {"task_id": created["id"], "wait": True, "wait_timeout_seconds": 30}
    )


async def log_of(client: Client, run: dict[str, Any]) -> str:
    contents = (await client.read_resource(run["log_uri"])).contents[0]
    text: str = getattr(contents, "text", "")
    return text

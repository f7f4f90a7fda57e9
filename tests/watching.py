"""Watching a run through subscriptions, the way each protocol generation does it."""

from __future__ import annotations

import warnings
from typing import Any

import anyio
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from tests.conftest import call_ok


async def watch_a_run(
    worker: Client, watcher: Client, mode: str, heard: list[str], step_seconds: float, settle: float
) -> tuple[dict[str, Any], str]:
    """Start a three-step run on `worker`, subscribe `watcher` to it and wait until it succeeded, then
    `settle` seconds more for the last notice; returns (the run, its URI).

    2025-11-25 (`mode` "legacy"): `resources/subscribe`, the notices reach the watcher's message
    handler (which fills `heard`); 2026-07-28: a `subscriptions/listen` stream, read into `heard` here.
    """
    pipeline = [{"id": step, "uses": "core.sleep", "with": {"seconds": step_seconds}} for step in "abc"]
    task = await call_ok(
        worker, "schedule_task", {"title": "watched", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )
    run = await call_ok(worker, "run_now", {"task_id": task["id"]})
    uri = f"orchestrator://runs/{run['id']}"
    async with anyio.create_task_group() as group:
        if mode == "legacy":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await watcher.subscribe_resource(uri)
        else:

            async def listen() -> None:
                async with watcher.listen(resource_subscriptions=[uri]) as subscription:
                    heard.extend([getattr(event, "uri", "") async for event in subscription])

            group.start_soon(listen)
        with anyio.fail_after(15):
            while True:
                run = await call_ok(worker, "get_run", {"run_id": run["id"]})
                if run["status"] == "succeeded":
                    break
                await anyio.sleep(0.1)
        await anyio.sleep(settle)
        group.cancel_scope.cancel()
    return run, uri

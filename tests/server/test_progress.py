"""Progress of a waited run reaches its client without the run waiting for that client."""

from __future__ import annotations

import anyio
from mcp import Client

from orchestrator_mcp.config import Settings
from orchestrator_mcp.server import create_server
from orchestrator_mcp.store.sql import SqlStore
from tests.conftest import call_ok

STEPS = 30


async def test_a_client_that_never_takes_its_progress_does_not_slow_its_run(
    settings: Settings, database_url: str
) -> None:
    """The in-memory client hands each progress notice straight to its callback, so a callback that
    does not return holds the server's sender: the run must end anyway, seen from the database."""
    released = anyio.Event()
    received: list[float] = []

    async def stuck(progress: float, total: float | None, message: str | None) -> None:
        received.append(progress)
        await released.wait()

    store = await SqlStore.open(database_url)
    try:
        async with Client(create_server(settings)) as client:
            pipeline = [{"id": f"s{n}", "uses": "core.noop"} for n in range(STEPS)]
            task = await call_ok(
                client, "schedule_task", {"title": "p", "schedule": {"kind": "manual"}, "pipeline": pipeline}
            )
            outcome: dict[str, object] = {}

            async def waited_run() -> None:
                result = await client.call_tool(
                    "run_now", {"task_id": task["id"], "wait": True}, progress_callback=stuck
                )
                outcome.update(result.structured_content or {})

            async with anyio.create_task_group() as group:
                group.start_soon(waited_run)
                with anyio.fail_after(30):
                    while True:
                        runs = await store.list_runs(None, task["id"], None, None, 1, None)
                        if runs and runs[0].status == "succeeded":
                            break
                        await anyio.sleep(0.02)
                assert runs[0].steps_completed == STEPS
                assert received == [1]  # the client is still holding the first notice
                released.set()
            assert outcome["status"] == "succeeded"
            assert received[0] == 1 and received[-1] == STEPS  # intermediate notices may be dropped
    finally:
        await store.close()

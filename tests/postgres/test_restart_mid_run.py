"""The database restarts: a run in flight waits for it and goes on; a tool call made meanwhile is told
the database cannot be reached, and the server serves again once it is back."""

from __future__ import annotations

import anyio
import pytest

from tests.conftest import call_error, call_ok
from tests.postgres.processes import wait_for
from tests.postgres.server import Cluster
from tests.reliability.support import connect

pytestmark = pytest.mark.slow  # spawns server processes


async def test_a_run_whose_write_meets_a_restarting_database_waits_for_it_and_succeeds(
    cluster: Cluster,
) -> None:
    url = cluster.url
    async with connect(url) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "through a restart",
                "schedule": {"kind": "manual"},
                "pipeline": [
                    {"id": "nap", "uses": "core.sleep", "with": {"seconds": 1}},
                    {"id": "after", "uses": "core.echo", "with": {"value": "still here"}},
                ],
            },
        )
        run = await call_ok(client, "run_now", {"task_id": task["id"]})
        await wait_for(url, "SELECT 1 FROM runs WHERE id = $1 AND status = 'running'", run["id"])
        cluster.stop()
        # The outage is the scenario, so it lasts a fixed time: the 1 s nap ends inside it, and the
        # write before the next step meets no database (were start-up slow, it would meet it later).
        await anyio.sleep(3)
        cluster.start()
        ended = await wait_for(
            url,
            "SELECT status, error FROM runs WHERE id = $1 AND finished_at IS NOT NULL",
            run["id"],
            within=30,
        )
        steps = await wait_for(
            url, "SELECT step_id, status FROM steps WHERE run_id = $1 ORDER BY seq", run["id"]
        )
    assert ended[0]["status"] == "succeeded", ended[0]["error"]
    assert [(row["step_id"], row["status"]) for row in steps] == [
        ("nap", "succeeded"),
        ("after", "succeeded"),
    ]


async def test_a_tool_call_while_the_database_is_down_is_a_tool_error_and_the_server_keeps_serving(
    cluster: Cluster,
) -> None:
    async with connect(cluster.url) as client:
        noop = [{"id": "noop", "uses": "core.noop"}]
        task = await call_ok(
            client, "schedule_task", {"title": "kept", "schedule": {"kind": "manual"}, "pipeline": noop}
        )
        cluster.stop()
        try:
            read = await call_error(client, "get_task", {"task_id": task["id"]})
            later = {"title": "not now", "schedule": {"kind": "manual"}, "pipeline": noop}
            write = await call_error(client, "schedule_task", later)
        finally:
            cluster.start()
        for text in (read, write):
            assert "database cannot be reached" in text and "try again" in text, text
        with anyio.fail_after(30):
            while (await client.call_tool("get_task", {"task_id": task["id"]})).is_error:  # noqa: ASYNC110 - a remote server
                await anyio.sleep(0.2)
        listed = await call_ok(client, "list_tasks", {})
    assert [item["title"] for item in listed["tasks"]] == ["kept"]

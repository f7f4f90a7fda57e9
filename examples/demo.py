"""The whole path in one script: the orchestrator calls the example weather server on a schedule.

    python examples/demo.py

It starts `orchestrator-mcp serve` over stdio with examples/catalog.json (on a throw-away
database), schedules a task every 2 seconds that reads a forecast (`save_as`) and posts a message
only when rain is likely (`if`), waits for two runs and prints their logs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp_types import TextContent, TextResourceContents

EXAMPLES = Path(__file__).resolve().parent

TASK: dict[str, Any] = {
    "title": "Demo: rain watch",
    "schedule": {"kind": "interval", "expr": "2s"},
    "pipeline": [
        {
            "id": "forecast",
            "uses": "weather.get_forecast",
            "with": {"city": "${{ params.city }}"},
            "save_as": "fc",
        },
        {
            "id": "alert",
            "uses": "weather.post_message",
            "if": "vars.fc.rain_probability > `30`",
            "with": {
                "channel": "alerts",
                "text": "Rain likely in ${{ params.city }}: ${{ vars.fc.rain_probability }}%",
            },
        },
    ],
    "params": {"city": "Lyon"},
}


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
        raise SystemExit(f"{tool} failed: {text}")
    content: dict[str, Any] = result.structured_content
    return content


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "orchestrator_mcp", "serve", "--catalog", str(EXAMPLES / "catalog.json")],
            env={
                **os.environ,
                "ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'demo.db'}",
                "ORCH_LOG_LEVEL": "WARNING",
                "ORCH_BACKGROUND_WORKER": "off",  # a throw-away database: nothing should outlive the demo
            },
        )
        async with Client(server) as client:
            task = await call(client, "schedule_task", TASK)
            print(f"scheduled {task['id']}: {task['schedule_description']}; next run {task['next_run_at']}")
            with anyio.fail_after(30):
                while True:
                    runs = (await call(client, "list_runs", {"task_id": task["id"]}))["runs"]
                    done = [run for run in runs if run["status"] not in ("queued", "running")]
                    if len(done) >= 2:
                        break
                    await anyio.sleep(0.2)
            for run in sorted(done, key=lambda run: run["scheduled_for"])[:2]:
                print(f"\nrun {run['id']} scheduled for {run['scheduled_for']}: {run['status']}")
                log = await client.read_resource(run["log_uri"])
                for content in log.contents:
                    if isinstance(content, TextResourceContents):
                        print(content.text, end="")
            await call(client, "cancel_task", {"task_id": task["id"]})


if __name__ == "__main__":
    anyio.run(main)

"""examples/catalog.json works for an installed package wherever it is started: another working
directory, and the virtual environment not on PATH (as a client starts the absolute path of
`orchestrator-mcp`). Each example pipeline is valid against it."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import call_ok

pytestmark = pytest.mark.slow  # spawns the server, which spawns the example server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INSTALLED = Path(sys.executable).parent / "orchestrator-mcp"


@pytest.mark.skipif(
    not INSTALLED.exists(), reason="the package is not installed in this interpreter's environment"
)
async def test_the_example_catalog_works_from_elsewhere_without_the_environment_on_path(
    tmp_path: Path,
) -> None:
    parameters = StdioServerParameters(
        command=str(INSTALLED),
        args=["serve", "--catalog", str(EXAMPLES / "catalog.json")],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "ORCH_DATABASE_URL": f"sqlite:///{tmp_path / 'o.db'}",
            "ORCH_BACKGROUND_WORKER": "off",
        },
        cwd=tmp_path,
    )
    async with Client(parameters) as client:
        task = await call_ok(
            client,
            "schedule_task",
            {
                "title": "forecast",
                "schedule": {"kind": "manual"},
                "pipeline": [
                    {"id": "fc", "uses": "weather.get_forecast", "with": {"city": "Lyon"}, "save_as": "fc"}
                ],
            },
        )
        run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
        assert run["status"] == "succeeded", run["error"]
        assert run["output"]["fc"]["city"] == "Lyon"

        for path in sorted((EXAMPLES / "pipelines").glob("*.json")):
            example = json.loads(path.read_text())
            checked = await call_ok(
                client,
                "validate_pipeline",
                {
                    key: example[key]
                    for key in ("pipeline", "schedule", "params", "on_failure", "output")
                    if key in example
                },
            )
            assert checked["valid"], (path.name, checked["errors"])
            if path.name == "daily_digest.json":  # "At 18:00 every day"
                paris = [
                    datetime.fromisoformat(t).astimezone(ZoneInfo("Europe/Paris"))
                    for t in checked["next_runs"]
                ]
                assert {(t.hour, t.minute) for t in paris} == {(18, 0)}

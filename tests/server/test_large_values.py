"""Large values (SPEC §3): stored whole, returned as string previews naming the resource that reads
them whole, and no Run returned over 256 KiB however much its steps handled."""

from __future__ import annotations

import json

from mcp import Client
from mcp_types import ReadResourceResult, TextResourceContents

from tests.conftest import call_ok

KIB = 1024


def whole(result: ReadResourceResult) -> object:
    content = result.contents[0]
    assert isinstance(content, TextResourceContents)
    return json.loads(content.text)


async def test_large_arguments_params_results_and_output_are_previews_with_whole_resources(
    client: Client,
) -> None:
    big = "x" * (200 * KIB)
    pipeline = [
        {"id": f"s{n}", "uses": "core.echo", "with": {"text": "${{ params.big }}"}, "save_as": f"v{n}"}
        for n in range(6)
    ]
    task = await call_ok(
        client, "schedule_task", {"title": "big", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )
    run = await call_ok(client, "run_now", {"task_id": task["id"], "params": {"big": big}, "wait": True})
    assert run["status"] == "succeeded"
    for shown in (run, await call_ok(client, "get_run", {"run_id": run["id"]})):
        assert len(json.dumps(shown)) <= 256 * KIB
        uri = f"orchestrator://runs/{run['id']}"
        assert isinstance(shown["params"], str) and f"read {uri}/params " in shown["params"]
        assert isinstance(shown["output"], str) and f"read {uri}/output " in shown["output"]
        step = shown["steps"][0]
        assert isinstance(step["arguments"], str) and f"{uri}/steps/s0/arguments" in step["arguments"]
        assert step["result_uri"] == f"{uri}/steps/s0/result" and isinstance(step["result"], str)
        assert step["arguments"].startswith('{"text": "xxx')

    uri = f"orchestrator://runs/{run['id']}"
    assert whole(await client.read_resource(f"{uri}/params")) == {"big": big}
    assert whole(await client.read_resource(f"{uri}/steps/s5/arguments")) == {"text": big}
    assert whole(await client.read_resource(f"{uri}/steps/s5/result")) == {"text": big}
    assert whole(await client.read_resource(f"{uri}/output")) == {f"v{n}": {"text": big} for n in range(6)}
    listed = await call_ok(client, "list_runs", {"task_id": task["id"]})
    assert len(json.dumps(listed)) <= 256 * KIB


async def test_small_values_come_back_as_they_are(client: Client) -> None:
    pipeline = [{"id": "s", "uses": "core.echo", "with": {"a": 1}, "save_as": "v"}]
    task = await call_ok(
        client, "schedule_task", {"title": "small", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )
    run = await call_ok(client, "run_now", {"task_id": task["id"], "params": {"p": 2}, "wait": True})
    assert run["params"] == {"p": 2} and run["output"] == {"v": {"a": 1}}
    assert run["steps"][0]["arguments"] == {"a": 1} and run["steps"][0]["result"] == {"a": 1}
    assert run["steps"][0]["result_uri"] is None

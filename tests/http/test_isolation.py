"""Two principals over HTTP never see each other's tasks, runs or logs; admin sees both."""

from __future__ import annotations

import warnings
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from orchestrator_mcp.config import Settings
from tests.conftest import call_error, call_ok, echo_pipeline
from tests.http.support import ALL, INITIALIZE, MCP_HEADERS, connect, serving


async def task_and_run(client: Client, title: str) -> tuple[dict[str, Any], dict[str, Any]]:
    task = await call_ok(
        client,
        "schedule_task",
        {"title": title, "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(who=title)},
    )
    run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
    assert run["status"] == "succeeded"
    return task, run


async def resource_refused(client: Client, uri: str) -> None:
    with pytest.raises(MCPError) as refused:
        await client.read_resource(uri)
    assert "not found" in str(refused.value)


async def completions(client: Client, name: str) -> list[str]:
    ref = ResourceTemplateReference(uri="orchestrator://runs/{run_id}")
    if name == "task_id":
        ref = ResourceTemplateReference(uri="orchestrator://tasks/{task_id}")
    result = await client.complete(ref, {"name": name, "value": ""})
    return result.completion.values


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_two_principals_cannot_see_each_others_tasks_runs_or_logs(
    settings: Settings, mode: str
) -> None:
    async with serving(settings) as server:
        alice_token, bob_token = await server.token("alice"), await server.token("bob")
        admin_token = await server.token("root", ALL + ",admin")
        async with (
            connect(server.url, alice_token, mode) as alice,
            connect(server.url, bob_token, mode) as bob,
        ):
            a_task, a_run = await task_and_run(alice, "alice's")
            b_task, b_run = await task_and_run(bob, "bob's")

            for tool, arguments in [
                ("get_task", {"task_id": a_task["id"]}),
                ("update_task", {"task_id": a_task["id"], "title": "mine now"}),
                ("pause_task", {"task_id": a_task["id"]}),
                ("resume_task", {"task_id": a_task["id"]}),
                ("cancel_task", {"task_id": a_task["id"]}),
                ("delete_task", {"task_id": a_task["id"]}),
                ("run_now", {"task_id": a_task["id"]}),
                ("list_runs", {"task_id": a_task["id"]}),
                ("get_run", {"run_id": a_run["id"]}),
                ("cancel_run", {"run_id": a_run["id"]}),
            ]:
                assert "not found" in await call_error(bob, tool, arguments), tool

            assert [t["id"] for t in (await call_ok(bob, "list_tasks"))["tasks"]] == [b_task["id"]]
            assert [r["id"] for r in (await call_ok(bob, "list_runs"))["runs"]] == [b_run["id"]]
            status = await call_ok(bob, "server_status")
            assert status["active_tasks"] == 1 and status["runs_24h"]["succeeded"] == 1

            for uri in (
                f"orchestrator://tasks/{a_task['id']}",
                f"orchestrator://runs/{a_run['id']}",
                a_run["log_uri"],
                f"orchestrator://runs/{a_run['id']}/steps/echo/result",
            ):
                await resource_refused(bob, uri)
            listed = {str(r.uri) for r in (await bob.list_resources()).resources}
            assert f"orchestrator://tasks/{b_task['id']}" in listed and b_run["log_uri"] in listed
            assert not any(a_task["id"] in uri or a_run["id"] in uri for uri in listed)

            assert await completions(bob, "task_id") == [b_task["id"]]
            assert await completions(bob, "run_id") == [b_run["id"]]
            prompt_ref = PromptReference(name="diagnose_run")
            completed = await bob.complete(prompt_ref, {"name": "run_id", "value": "run_"})
            assert completed.completion.values == [b_run["id"]]
            diagnosis = await bob.get_prompt("diagnose_run", {"run_id": a_run["id"]})
            assert "not found" in diagnosis.messages[0].content.text  # type: ignore[union-attr]
            if mode == "legacy":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)  # still current in 2025-11-25
                    with pytest.raises(MCPError, match="not found"):
                        await bob.subscribe_resource(f"orchestrator://runs/{a_run['id']}")
                    await bob.subscribe_resource(f"orchestrator://runs/{b_run['id']}")

            # Alice's own records are intact after all of that.
            assert (await call_ok(alice, "get_task", {"task_id": a_task["id"]}))["status"] == "active"

        async with connect(server.url, admin_token, mode) as admin:
            tasks = {t["id"] for t in (await call_ok(admin, "list_tasks"))["tasks"]}
            assert tasks == {a_task["id"], b_task["id"]}
            runs = {r["id"] for r in (await call_ok(admin, "list_runs"))["runs"]}
            assert runs == {a_run["id"], b_run["id"]}
            assert (await call_ok(admin, "get_run", {"run_id": b_run["id"]}))["status"] == "succeeded"
            log = await admin.read_resource(a_run["log_uri"])
            assert "calling core.echo" in log.contents[0].text  # type: ignore[union-attr]
            assert set(await completions(admin, "task_id")) == tasks


async def test_a_session_cannot_be_used_with_another_principals_token(settings: Settings) -> None:
    async with serving(settings) as server:
        alice, bob = await server.token("alice"), await server.token("bob")
        async with httpx2.AsyncClient() as http:
            opened = await http.post(
                server.url, json=INITIALIZE, headers=MCP_HEADERS | {"authorization": f"Bearer {alice}"}
            )
            session = opened.headers["mcp-session-id"]
            stolen = await http.post(
                server.url,
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                headers=MCP_HEADERS
                | {
                    "authorization": f"Bearer {bob}",
                    "mcp-session-id": session,
                    "mcp-protocol-version": "2025-11-25",
                },
            )
        assert stolen.status_code == 404

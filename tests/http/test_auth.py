"""Bearer tokens over HTTP: 401 without a valid one, scopes per tool, and foreign origins refused."""

from __future__ import annotations

import httpx2

from orchestrator_mcp.config import Settings
from tests.conftest import call_error, call_ok, echo_pipeline
from tests.http.support import INITIALIZE, MCP_HEADERS, connect, serving

MANUAL = {"kind": "manual"}


async def post(url: str, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(url, json=INITIALIZE, headers=MCP_HEADERS | headers)


async def test_a_missing_bad_or_revoked_token_gets_401_with_www_authenticate(settings: Settings) -> None:
    async with serving(settings) as server:
        token = await server.token("alice")
        assert (await post(server.url, {"authorization": f"Bearer {token}"})).status_code == 200
        for headers in ({}, {"authorization": "Bearer orch_not-a-token"}, {"authorization": "Basic eDp5"}):
            response = await post(server.url, headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"].startswith("Bearer ")
            assert "/.well-known/oauth-protected-resource/mcp" in response.headers["www-authenticate"]
        await server.revoke(token)
        revoked = await post(server.url, {"authorization": f"Bearer {token}"})
        assert revoked.status_code == 401 and revoked.headers["www-authenticate"].startswith("Bearer ")

        async with httpx2.AsyncClient() as http:
            metadata = (await http.get(f"{server.base_url}/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == server.url


async def test_a_read_only_token_can_read_but_not_schedule_or_run(settings: Settings) -> None:
    async with serving(settings) as server:
        writer = await server.token("alice")
        reader = await server.token("alice", "tasks:read,runs:read")
        async with connect(server.url, writer) as client:
            task = await call_ok(
                client,
                "schedule_task",
                {"title": "t", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(x=1)},
            )
        async with connect(server.url, reader) as client:
            assert (await call_ok(client, "get_task", {"task_id": task["id"]}))["id"] == task["id"]
            refused = await call_error(
                client,
                "schedule_task",
                {"title": "t", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(x=1)},
            )
            assert "'tasks:write' scope" in refused
            assert "'runs:write' scope" in await call_error(client, "run_now", {"task_id": task["id"]})
            assert "'catalog:read' scope" in await call_error(client, "list_catalog", {})


async def test_a_runs_write_token_alone_can_run_now_with_wait_and_cancel_a_run(settings: Settings) -> None:
    """Each call checks the one scope it needs: run_now and cancel_run return the run they acted on
    without also needing `runs:read`."""
    async with serving(settings) as server:
        writer = await server.token("alice")
        runner = await server.token("alice", "runs:write")
        async with connect(server.url, writer) as client:
            quick = await call_ok(
                client, "schedule_task", {"title": "q", "schedule": MANUAL, "pipeline": echo_pipeline(x=1)}
            )
            nap = [{"id": "nap", "uses": "core.sleep", "with": {"seconds": 60}}]
            slow = await call_ok(client, "schedule_task", {"title": "s", "schedule": MANUAL, "pipeline": nap})
        async with connect(server.url, runner) as client:
            run = await call_ok(client, "run_now", {"task_id": quick["id"], "wait": True})
            assert run["status"] == "succeeded" and run["output"] == {"echoed": {"x": 1}}
            started = await call_ok(client, "run_now", {"task_id": slow["id"]})
            assert started["status"] in ("queued", "running")
            cancelled = await call_ok(client, "cancel_run", {"run_id": started["id"]})
            assert cancelled["id"] == started["id"] and cancelled["status"] in ("cancelled", "running")
            assert "'runs:read' scope" in await call_error(client, "get_run", {"run_id": run["id"]})


async def test_a_foreign_origin_or_host_is_refused_even_with_a_valid_token(settings: Settings) -> None:
    async with serving(settings) as server:
        auth = {"authorization": f"Bearer {await server.token('alice')}"}
        assert (await post(server.url, auth | {"origin": server.base_url})).status_code == 200
        assert (await post(server.url, auth | {"origin": "http://evil.example"})).status_code == 403
        assert (await post(server.url, auth | {"host": "evil.example"})).status_code == 421


async def test_allowed_hosts_and_origins_can_be_configured(settings: Settings) -> None:
    async with serving(
        settings, allowed_hosts=["api.example:443"], allowed_origins=["https://app.example"]
    ) as server:
        auth = {"authorization": f"Bearer {await server.token('alice')}"}
        ok = auth | {"host": "api.example:443", "origin": "https://app.example"}
        assert (await post(server.url, ok)).status_code == 200
        assert (await post(server.url, auth)).status_code == 421  # 127.0.0.1:port is no longer listed


async def test_without_auth_on_loopback_the_caller_is_local_with_every_scope(settings: Settings) -> None:
    async with serving(settings, auth=False) as server:
        async with connect(server.url) as client:
            task = await call_ok(
                client,
                "schedule_task",
                {"title": "t", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(x=1)},
            )
            assert task["owner"] == "local"

"""`/health/live`, `/health/ready` and `/metrics` need no token and tell nothing about principals,
tokens, secrets, files or commands; readiness details are for an admin token (SPEC §11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2

from orchestrator_mcp.config import Settings
from tests.conftest import call_ok, echo_pipeline
from tests.http.support import ALL, connect, serving

SECRET_COMMAND = "/opt/secret-tools/bin/missing-server"
SECRET_ARGUMENT = "sk-live-0123456789"
PRINCIPAL = "alice-who-must-not-be-named"


async def get(url: str, token: str | None = None) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http:
        return await http.get(url)


async def admin_readiness(base_url: str, token: str) -> dict[str, Any]:
    """Readiness as an admin reads it, once the catalog has given up on the broken server."""
    with anyio.fail_after(15):
        while True:
            body: dict[str, Any] = (await get(f"{base_url}/health/ready", token)).json()
            if body["catalog"]["unavailable"]:
                return body
            await anyio.sleep(0.05)


async def test_open_endpoints_reveal_no_principal_token_secret_path_or_command(
    settings: Settings, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            {"mcpServers": {"broken": {"command": SECRET_COMMAND, "args": ["--key", SECRET_ARGUMENT]}}}
        )
    )
    async with serving(settings.model_copy(update={"catalog": catalog})) as server:
        token = await server.token(PRINCIPAL)
        admin = await server.token("root", ALL + ",admin")
        async with connect(server.url, token) as client:
            task = await call_ok(
                client,
                "schedule_task",
                {"title": "t", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline()},
            )
            assert (await call_ok(client, "run_now", {"task_id": task["id"], "wait": True}))[
                "status"
            ] == "succeeded"
        details = await admin_readiness(server.base_url, admin)
        assert SECRET_COMMAND in json.dumps(details["catalog"])  # an admin reads why the server is down
        assert details["catalog"]["servers_total"] == 3 and "last_loop_at" in details["scheduler"]

        token_id = (await server.tokens.find(token)).id  # type: ignore[union-attr]
        private = [
            PRINCIPAL,
            token,
            token_id,
            admin,
            SECRET_COMMAND,
            SECRET_ARGUMENT,
            str(tmp_path),
            "missing-server",
        ]
        for who in (None, token, "orch_not-a-token"):  # no token, an ordinary one, a bad one
            live = await get(f"{server.base_url}/health/live", who)
            ready = await get(f"{server.base_url}/health/ready", who)
            metrics = await get(f"{server.base_url}/metrics", who)
            assert (live.status_code, ready.status_code, metrics.status_code) == (200, 200, 200)
            assert ready.json() == {
                "status": "ready",
                "ready": True,
                "database": {"ok": True},
                "scheduler": {"ok": True},
            }
            assert 'orchestrator_tool_calls_total{outcome="ok",tool="run_now"} 1.0' in metrics.text
            for text in (live.text, ready.text, metrics.text):
                assert not [secret for secret in private if secret in text]


async def test_without_tokens_the_local_caller_reads_the_details(settings: Settings) -> None:
    async with serving(settings, auth=False) as server:
        body = (await get(f"{server.base_url}/health/ready")).json()
        assert body["ready"] and body["catalog"]["servers_total"] == 2

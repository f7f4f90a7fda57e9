"""The network policy of `http.request` over real HTTP: a principal with an ordinary token cannot
make the server call its own endpoints, other loopback services or cloud metadata; an `admin` can,
and so can anyone once the operator names the host in ORCH_HTTP_ALLOW."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from mcp import Client

from orchestrator_mcp.config import Settings
from tests.conftest import call_ok
from tests.counting_server import counting_server
from tests.http.support import ALL, connect, serving

ORDINARY = "tasks:write,runs:read,runs:write"
REMEDY = "ask the operator to name this host in ORCH_HTTP_ALLOW"


async def run_request(client: Client, url: str) -> dict[str, Any]:
    """Schedule a manual task whose one step requests `url`, run it now and return the ended run."""
    task = await call_ok(
        client,
        "schedule_task",
        {
            "title": f"fetch {url}",
            "schedule": {"kind": "manual"},
            "pipeline": [{"id": "fetch", "uses": "http.request", "with": {"url": url, "timeout_seconds": 5}}],
        },
    )
    return await call_ok(client, "run_now", {"task_id": task["id"], "wait": True, "wait_timeout_seconds": 30})


async def test_an_ordinary_token_cannot_reach_loopback_or_metadata_and_an_admin_can(
    settings: Settings,
) -> None:
    async with counting_server() as listener, serving(settings) as server:
        port = listener.port
        refused = {
            f"{server.base_url}/metrics": "destination 127.0.0.1 (loopback)",
            f"{listener.url}/": "destination 127.0.0.1 (loopback)",
            "http://169.254.169.254/latest/meta-data/": "destination 169.254.169.254 (link-local)",
            f"http://2130706433:{port}/": "destination 2130706433 (127.0.0.1, loopback)",
            f"http://[::ffff:127.0.0.1]:{port}/": "destination ::ffff:127.0.0.1 (::ffff:7f00:1, loopback)",
        }
        async with connect(server.url, await server.token("mallory", ORDINARY)) as mallory:
            for url, destination in refused.items():
                run = await run_request(mallory, url)
                assert run["status"] == "failed", url
                assert run["error"]["type"] == "tool_error"
                assert run["error"]["message"] == f"{destination} is refused: {REMEDY}"
        assert listener.connections == 0

        async with connect(server.url, await server.token("root", ALL + ",admin")) as admin:
            run = await run_request(admin, f"{listener.url}/")
            assert run["status"] == "succeeded", run["error"]
            assert run["steps"][0]["result"]["text"] == "ok"
            assert (await call_ok(admin, "server_status"))["queue"] == {"queued": 0, "running": 0}
        assert listener.requests == [("GET / HTTP/1.1", f"127.0.0.1:{port}")]

        async with httpx2.AsyncClient() as http:  # still answering, its own endpoints untouched
            assert (await http.get(f"{server.base_url}/health/live")).json() == {"status": "live"}


async def test_naming_the_listener_in_http_allow_opens_it_to_an_ordinary_token(
    settings: Settings, tmp_path: Path
) -> None:
    async with counting_server() as listener:
        opened = settings.model_copy(
            update={"http_allow": "127.0.0.1", "database_url": f"sqlite+aiosqlite:///{tmp_path / 'allow.db'}"}
        )
        async with (
            serving(opened) as server,
            connect(server.url, await server.token("alice", ORDINARY)) as alice,
        ):
            run = await run_request(alice, f"{listener.url}/")
            assert run["status"] == "succeeded", run["error"]
            elsewhere = await run_request(alice, "http://169.254.169.254/latest/meta-data/")
            assert elsewhere["error"]["message"] == (
                "host '169.254.169.254' is not allowed: ORCH_HTTP_ALLOW names only 127.0.0.1"
            )
        assert listener.requests == [("GET / HTTP/1.1", f"127.0.0.1:{listener.port}")]

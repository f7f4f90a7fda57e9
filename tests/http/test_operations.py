"""Operating the HTTP server: health, metrics, rate limits, progress, both protocol generations, load."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import httpx2
import pytest

from orchestrator_mcp.clock import ManualClock
from orchestrator_mcp.config import Settings
from tests.conftest import call_error, call_ok, echo_pipeline
from tests.http.support import ALL, connect, serving

SCHEDULE = {"kind": "interval", "expr": "1h"}


async def get(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.get(url)


def sample(metrics: str, name: str) -> float:
    """The value of one sample line (`name{labels}` exactly as exposed), or 0 when absent."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[-1])
    return 0.0


async def test_health_says_live_and_ready(settings: Settings) -> None:
    """503 while the database is down: tests/postgres/test_health.py (a server that can really stop)."""
    async with serving(settings) as server:
        assert (await get(f"{server.base_url}/health/live")).json() == {"status": "live"}
        ready = await get(f"{server.base_url}/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "ready": True,
            "database": {"ok": True},
            "scheduler": {"ok": True},
        }
        admin = {"authorization": f"Bearer {await server.token('root', ALL + ',admin')}"}
        async with httpx2.AsyncClient(headers=admin) as http:
            body = (await http.get(f"{server.base_url}/health/ready")).json()
        assert body["database"]["ok"] and body["scheduler"]["ok"]
        assert body["catalog"]["servers_available"] == body["catalog"]["servers_total"] == 2


async def test_metrics_count_tool_calls_runs_lateness_and_downstream_calls(settings: Settings) -> None:
    async with serving(settings) as server:
        async with connect(server.url, await server.token("alice")) as client:
            task = await call_ok(
                client, "schedule_task", {"title": "m", "schedule": SCHEDULE, "pipeline": echo_pipeline(a=1)}
            )
            run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
            assert run["status"] == "succeeded"
            await call_error(client, "get_task", {"task_id": "task_missing"})
        response = await get(f"{server.base_url}/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert sample(text, 'orchestrator_tool_calls_total{outcome="ok",tool="schedule_task"}') == 1
        assert sample(text, 'orchestrator_tool_calls_total{outcome="ok",tool="run_now"}') == 1
        assert sample(text, 'orchestrator_tool_calls_total{outcome="not_found",tool="get_task"}') == 1
        assert sample(text, 'orchestrator_tool_call_duration_seconds_count{tool="run_now"}') == 1
        assert sample(text, 'orchestrator_runs{status="succeeded"}') == 1
        assert sample(text, 'orchestrator_queue_depth{state="queued"}') == 0
        assert sample(text, 'orchestrator_queue_depth{state="running"}') == 0
        assert sample(text, "orchestrator_fire_lateness_seconds_count") == 1
        downstream = 'orchestrator_downstream_call_duration_seconds_count{outcome="ok",server="core"}'
        assert sample(text, downstream) == 1


async def test_the_rate_limit_refuses_with_a_retry_time_then_recovers(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit": 60})
    clock = ManualClock(datetime.now(UTC))
    async with serving(limited, clock) as server:
        async with connect(server.url, await server.token("alice")) as alice:
            arguments = {"schedule": SCHEDULE, "count": 1}
            for _ in range(60):
                await call_ok(alice, "preview_schedule", arguments)
            refused = await call_error(alice, "preview_schedule", arguments)
            assert "rate limit" in refused and "retry in 1 s" in refused
            async with connect(server.url, await server.token("bob")) as bob:  # others are not affected
                await call_ok(bob, "preview_schedule", arguments)
            clock.advance(1)  # one call's worth of refill
            await call_ok(alice, "preview_schedule", arguments)
            await call_error(alice, "preview_schedule", arguments)


async def test_run_now_with_wait_sends_progress_after_each_step_over_http(settings: Settings) -> None:
    async with serving(settings) as server:
        async with connect(server.url, await server.token("alice")) as client:
            pipeline = [{"id": f"s{n}", "uses": "core.echo", "with": {"n": n}} for n in range(3)]
            task = await call_ok(
                client, "schedule_task", {"title": "p", "schedule": {"kind": "manual"}, "pipeline": pipeline}
            )
            seen: list[tuple[float, float | None, str | None]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append((progress, total, message))

            result = await client.call_tool(
                "run_now", {"task_id": task["id"], "wait": True}, progress_callback=on_progress
            )
            assert not result.is_error
            assert seen[:3] == [(n, 3, f"step s{n - 1} succeeded") for n in (1, 2, 3)]
            assert seen[-1] == (3, 3, "run succeeded")


@pytest.mark.parametrize("stateless", [False, True], ids=["sessions", "stateless"])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_protocol_generations_over_http(settings: Settings, mode: str, stateless: bool) -> None:
    async with serving(settings, stateless=stateless) as server:
        token = await server.token("alice", ALL + ",admin")
        for _ in range(3):  # several clients: the lifespan (one engine) is shared by all of them
            async with connect(server.url, token, mode) as client:
                assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
                task = await call_ok(
                    client,
                    "schedule_task",
                    {"title": "g", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(m=mode)},
                )
                run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
                assert run["output"] == {"echoed": {"m": mode}}
                log = await client.read_resource(run["log_uri"])
                assert "calling core.echo" in log.contents[0].text  # type: ignore[union-attr]
                catalog = await client.read_resource("orchestrator://catalog")
                assert "core.echo" in catalog.contents[0].text  # type: ignore[union-attr]
        async with connect(server.url, token, mode) as client:
            status = await call_ok(client, "server_status")
            assert len(status["instances"]) == 1
            assert status["runs_24h"]["succeeded"] == 3


async def test_forty_concurrent_clients_schedule_and_run_without_an_error(settings: Settings) -> None:
    async with serving(settings) as server:
        tokens = [await server.token(f"user{n}") for n in range(4)]
        outcomes: list[str] = []

        async def one_client(n: int) -> None:
            async with connect(server.url, tokens[n % 4]) as client:
                task = await call_ok(
                    client,
                    "schedule_task",
                    {"title": f"c{n}", "schedule": {"kind": "manual"}, "pipeline": echo_pipeline(n=n)},
                )
                run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
                assert run["output"] == {"echoed": {"n": n}}
                assert (await call_ok(client, "get_run", {"run_id": run["id"]}))["status"] == "succeeded"
                await call_ok(client, "list_runs", {"task_id": task["id"]})
                outcomes.append(run["status"])

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for n in range(40):
                    group.start_soon(one_client, n)
        assert outcomes == ["succeeded"] * 40
        async with connect(server.url, tokens[0]) as client:
            assert len((await call_ok(client, "list_tasks"))["tasks"]) == 10

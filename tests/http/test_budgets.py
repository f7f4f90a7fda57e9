"""Budgets over real HTTP (SPEC §11): costly expressions and schedules fail with a clear error, and
while they are computed every other request is still answered within a second."""

from __future__ import annotations

import resource
import time
from typing import Any

import anyio
import httpx2
from mcp import Client

from orchestrator_mcp.config import Settings
from tests.conftest import call_error, call_ok
from tests.http.support import connect, serving

DOUBLING_16 = "params.x" + " | [@,@]" * 16
"""Builds 65,536 references to `params.x`: over 1 MiB once expanded, for a value of 20 characters."""
TEMPLATE = "${{ " + DOUBLING_16 + " }}"
DOUBLING_17 = "params.x" + " | [@,@]" * 17
"""Can repeat a value 131,072 times: refused as soon as it is compiled."""
_LIST = "`[" + ",".join(str(n) for n in range(60)) + "]`"
SPINNING = f"map(&length(map(&length(map(&length(map(&@, {_LIST})), {_LIST})), {_LIST})), {_LIST})"
"""Builds nothing large, but visits 60**4 values: many seconds of work without a budget."""
COSTLY_RULES = ["FREQ=SECONDLY;BYEASTER=0;BYMONTH=1", "FREQ=DAILY;BYMONTH=2;BYYEARDAY=366"]
ANSWER_WITHIN = 1.0


def manual_task(title: str, **fields: Any) -> dict[str, Any]:
    return {"title": title, "schedule": {"kind": "manual"}, "params": {"x": "y" * 20}} | fields


async def attacks(client: Client) -> None:
    """Every costly thing the contract names, each checked for its clear error."""
    built = await call_ok(
        client,
        "schedule_task",
        manual_task(
            "doubling",
            pipeline=[{"id": "double", "uses": "core.echo", "with": {"v": f"${{{{ {DOUBLING_16} }}}}"}}],
        ),
    )
    run = await call_ok(client, "run_now", {"task_id": built["id"], "wait": True})
    assert run["status"] == "failed", run
    assert run["error"]["step_id"] == "double"
    assert "expression too costly: it would build a value over 1 MiB" in run["error"]["message"]

    output = await call_ok(
        client,
        "schedule_task",
        manual_task("output", pipeline=[{"id": "a", "uses": "core.noop"}], output=DOUBLING_16),
    )
    run = await call_ok(client, "run_now", {"task_id": output["id"], "wait": True})
    assert run["status"] == "failed" and "output: expression" in run["error"]["message"]
    assert "expression too costly" in run["error"]["message"]

    spinning = await call_ok(
        client,
        "schedule_task",
        manual_task("spin", pipeline=[{"id": "spin", "uses": "core.noop", "if": SPINNING}]),
    )
    run = await call_ok(client, "run_now", {"task_id": spinning["id"], "wait": True})
    assert run["status"] == "failed" and run["error"]["step_id"] == "spin"
    assert "expression too costly: it ran over 1 s" in run["error"]["message"]

    for rule in COSTLY_RULES:
        text = await call_error(client, "preview_schedule", {"schedule": {"kind": "rrule", "expr": rule}})
        assert "schedule.expr: schedule is too costly to compute" in text

    checked = await call_ok(
        client,
        "validate_pipeline",
        {"pipeline": [{"id": "a", "uses": "core.noop", "if": DOUBLING_17}], "output": DOUBLING_17},
    )
    assert not checked["valid"]
    assert {error["path"] for error in checked["errors"]} == {"pipeline[0].if", "output"}
    assert all("expression too costly" in error["message"] for error in checked["errors"])

    refused = await call_error(
        client,
        "schedule_task",
        manual_task("refused", pipeline=[{"id": "a", "uses": "core.noop"}], output=DOUBLING_17),
    )
    assert "output: invalid expression" in refused and "expression too costly" in refused


async def test_costly_work_fails_clearly_while_every_other_request_is_answered_within_a_second(
    settings: Settings,
) -> None:
    unlimited = settings.model_copy(update={"rate_limit": 1_000_000})  # the watcher asks nonstop
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answered: list[tuple[str, float]] = []
    async with serving(unlimited) as server:
        async with (
            connect(server.url, await server.token("mallory")) as attacker,
            connect(server.url, await server.token("bob")) as bystander,
            httpx2.AsyncClient(base_url=server.base_url) as http,
        ):
            task = await call_ok(
                bystander, "schedule_task", manual_task("mine", pipeline=[{"id": "a", "uses": "core.noop"}])
            )
            finished = anyio.Event()

            async def watch() -> None:
                while not finished.is_set():
                    started = time.monotonic()
                    assert (await http.get("/health/live")).status_code == 200
                    answered.append(("/health/live", time.monotonic() - started))
                    started = time.monotonic()
                    await call_ok(bystander, "get_task", {"task_id": task["id"]})
                    answered.append(("get_task", time.monotonic() - started))

            async with anyio.create_task_group() as group:
                group.start_soon(watch)
                try:
                    with anyio.fail_after(120):
                        await attacks(attacker)
                finally:
                    finished.set()

    slowest = max(answered, key=lambda item: item[1])
    print(f"{len(answered)} answers while attacked, slowest {slowest[0]} in {slowest[1]:.3f} s")
    assert len(answered) > 20 and slowest[1] < ANSWER_WITHIN, slowest
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 300 * 1024  # no balloon (the attack that prompted this reached 1.6 GB)

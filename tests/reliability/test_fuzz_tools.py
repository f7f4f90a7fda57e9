"""Thousands of random and hostile tool calls through the real stdio server: only results or tool errors."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import call_ok, text_of
from tests.reliability.support import connect

pytestmark = pytest.mark.slow  # spawns server processes

SEED = 1729
CASES = 3000

HOSTILE_STRINGS = [
    "",
    " ",
    "'; DROP TABLE tasks; --",
    '" OR 1=1 --',
    "${{ }}",
    "${{ secrets.X }}",
    "${{ params['a'] }}${{",
    "${{ vars.x | length(@) }}",
    "}}{{${{",
    "\x00",
    "a\x00b",
    "💥🦄" * 10,
    "\u202e\ufeff",
    "../../etc/passwd",
    "%s%n%x",
    "\\",
    "run_00000000000000000000000000",
    "task_00000000000000000000000000",
    "orchestrator://runs/x/log",
    "* * * * *",
    "1s",
    "0s",
    "-1s",
    "PT0S",
    "@hourly",
    "2026-02-30T25:61:00",
    "Europe/Nowhere",
    "UTC",
    "core.echo",
    "core.sleep",
    "nope.nope",
    "manual",
    "interval",
    "cron",
    "once",
    "rrule",
    "FREQ=SECONDLY;INTERVAL=0",
]
NUMBERS: list[Any] = [0, -1, 1, 3, 50, 201, 2**31, -(2**63), 2**70, 1e308, -1e308, 0.5, float("nan"), True]


class Fuzzer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ids: list[str] = []

    def string(self) -> str:
        roll = self.rng.random()
        if roll < 0.005:
            return "x" * self.rng.choice([100_000, 1_000_000])
        if roll < 0.1 and self.ids:
            return self.rng.choice(self.ids)
        if roll < 0.2:
            return "".join(chr(self.rng.randrange(0, 0x2FFF)) for _ in range(self.rng.randrange(1, 40)))
        return self.rng.choice(HOSTILE_STRINGS)

    def value(self, depth: int = 0) -> Any:
        kind = self.rng.randrange(8 if depth < 3 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.choice(NUMBERS)
        if kind in (2, 3, 4):
            return self.string()
        if kind == 5:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        if kind == 6:
            return {self.string()[:30]: self.value(depth + 1) for _ in range(self.rng.randrange(4))}
        # Deeper than ~200 levels the SDK's JSON parser gives up and the request is never answered:
        # see test_a_request_nested_deeper_than_the_json_parser_allows_is_answered below.
        return self.nested(self.rng.randrange(20, 150))

    def nested(self, depth: int) -> Any:
        value: Any = "bottom"
        for _ in range(depth):
            value = [value] if self.rng.random() < 0.5 else {"a": value}
        return value

    def schedule(self) -> Any:
        if self.rng.random() < 0.3:
            return self.value()
        return {
            "kind": self.rng.choice(["once", "interval", "cron", "rrule", "manual", "bogus", 3]),
            "expr": self.rng.choice([*HOSTILE_STRINGS, "1h", "0 7 * * *", "2030-01-01T00:00:00", 5]),
            **({"timezone": self.string()} if self.rng.random() < 0.3 else {}),
            **({"jitter_seconds": self.rng.choice(NUMBERS)} if self.rng.random() < 0.2 else {}),
        }

    def pipeline(self) -> Any:
        if self.rng.random() < 0.2:
            return self.value()
        return [
            {
                "id": self.rng.choice(["a", "b", self.string()]),
                "uses": self.rng.choice(["core.echo", "core.noop", "core.transform", self.string()]),
                "with": self.rng.choice([{}, {"text": self.string()}, self.value()]),
                **({"if": self.string()} if self.rng.random() < 0.3 else {}),
                **({"save_as": self.string()} if self.rng.random() < 0.2 else {}),
                **({"retry": self.value()} if self.rng.random() < 0.1 else {}),
            }
            for _ in range(self.rng.randrange(0, 4))
        ]

    def field(self, name: str) -> Any:
        if self.rng.random() < 0.35:
            return self.value()
        if name == "schedule":
            return self.schedule()
        if name == "pipeline":
            return self.pipeline()
        if name in ("params", "policy"):
            return {self.string()[:20]: self.value() for _ in range(self.rng.randrange(3))}
        if name in ("limit", "count", "wait_timeout_seconds"):
            return self.rng.choice(NUMBERS)
        if name in ("wait", "include_steps", "cancel_running"):
            return self.rng.choice([True, False, "yes", 1, None])
        return self.string()

    def arguments(self, properties: dict[str, Any]) -> dict[str, Any]:
        arguments = {name: self.field(name) for name in properties if self.rng.random() < 0.7}
        if self.rng.random() < 0.2:
            arguments[self.string()[:40] or "extra"] = self.value()
        if arguments.get("wait") is True:
            arguments["wait_timeout_seconds"] = 1
        return arguments


async def test_random_and_hostile_arguments_only_ever_get_results_or_tool_errors(tmp_path: Path) -> None:
    database = tmp_path / "fuzz.db"
    fuzzer = Fuzzer(random.Random(SEED))
    outcomes = {"ok": 0, "tool_error": 0}
    async with connect(database) as client:
        tools = {
            tool.name: tool.input_schema.get("properties", {}) for tool in (await client.list_tools()).tools
        }
        task = await call_ok(
            client,
            "schedule_task",
            {"title": "seed", "schedule": {"kind": "manual"}, "pipeline": [{"id": "n", "uses": "core.noop"}]},
        )
        run = await call_ok(client, "run_now", {"task_id": task["id"], "wait": True})
        fuzzer.ids += [task["id"], run["id"]]
        names = sorted(tools)
        for case in range(CASES):
            name = names[case % len(names)] if case < len(names) * 5 else fuzzer.rng.choice(names)
            arguments = fuzzer.arguments(tools[name])
            with anyio.move_on_after(30) as scope:
                result = await fuzzer_call(client, name, arguments, case)
            assert not scope.cancelled_caught, (
                f"case {case}: {name}({str(arguments)[:800]}) got no answer in 30s"
            )
            text = text_of(result)
            assert "Traceback" not in text, (name, text[:2000])
            if result.is_error:
                assert text.strip(), (name, "an error without a message")
                outcomes["tool_error"] += 1
            else:
                outcomes["ok"] += 1
                content = result.structured_content or {}
                for key in ("id", "task_id", "run_id"):
                    if isinstance(content.get(key), str) and len(fuzzer.ids) < 200:
                        fuzzer.ids.append(content[key])
        status = await call_ok(client, "server_status")
        assert status["version"]
        after = await call_ok(
            client,
            "schedule_task",
            {
                "title": "after",
                "schedule": {"kind": "manual"},
                "pipeline": [{"id": "n", "uses": "core.noop"}],
            },
        )
        assert (await call_ok(client, "run_now", {"task_id": after["id"], "wait": True}))[
            "status"
        ] == "succeeded"
    print(f"\nfuzz: cases={CASES} ok={outcomes['ok']} tool_errors={outcomes['tool_error']}")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert outcomes["ok"] > 0


async def fuzzer_call(client: Client, name: str, arguments: dict[str, Any], case: int) -> Any:
    try:
        return await client.call_tool(name, arguments)
    except Exception as error:  # a protocol error is a failure of the server's contract
        raise AssertionError(f"case {case}: {name}({str(arguments)[:500]}) raised {error!r}") from error


@pytest.mark.xfail(
    strict=True,
    reason="bug (SDK stdio transport): a message nested deeper than pydantic-core's JSON recursion "
    "limit fails to parse and is dropped without any JSON-RPC answer, so the caller waits forever",
)
async def test_a_request_nested_deeper_than_the_json_parser_allows_is_answered(tmp_path: Path) -> None:
    async with connect(tmp_path / "deep.db") as client:
        with anyio.move_on_after(5) as scope:
            await client.call_tool("get_task", {"task_id": Fuzzer(random.Random(0)).nested(300)})
        assert not scope.cancelled_caught, "no answer to a deeply nested request"

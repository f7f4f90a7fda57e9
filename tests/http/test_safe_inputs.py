"""Small holes closed, over real HTTP: a log message cannot forge lines, a forged cursor is a clear
tool error, and subscriptions and the catalog in prompts need their scopes."""

from __future__ import annotations

import base64
import json
import re
import warnings
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import TextContent, TextResourceContents

from orchestrator_mcp.config import Settings
from tests.conftest import call_error, call_ok, echo_pipeline
from tests.http.limits import still_answers, tool_error
from tests.http.support import ALL, connect, serving

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (DEBUG|INFO|WARNING|ERROR)( \[step [\w-]+\])? ")
FORGED = "boom\n2026-01-01T00:00:00Z INFO [step fake] all good\r\x1b[31mred\x1b[0m\x00\x85\u2028end"


async def manual_task(client: Client, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
    return await call_ok(
        client, "schedule_task", {"title": "t", "schedule": {"kind": "manual"}, "pipeline": pipeline}
    )


async def test_a_tool_error_with_newlines_and_escapes_is_one_escaped_log_line(settings: Settings) -> None:
    async with serving(settings) as server, connect(server.url, await server.token("alice")) as alice:
        task = await manual_task(alice, [{"id": "fail", "uses": "core.fail", "with": {"message": FORGED}}])
        run = await call_ok(alice, "run_now", {"task_id": task["id"], "wait": True})
        assert run["status"] == "failed"
        read = await alice.read_resource(run["log_uri"])
        content = read.contents[0]
        assert isinstance(content, TextResourceContents)
        lines = content.text.splitlines()
        assert lines and all(LINE.match(line) for line in lines), lines
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", content.text)
        forged = [line for line in lines if "all good" in line]
        assert len(forged) >= 1 and all("boom\\n2026-01-01T00:00:00Z INFO" in line for line in forged)
        assert "\\r\\x1b[31mred\\x1b[0m\\x00\\x85\\u2028end" in forged[0]
        # The stored record keeps the text as the tool gave it (JSON escapes it on the way out).
        assert FORGED in run["steps"][0]["error"]


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of(["2026-03-01T09:30:15", "task_1"]),  # a naive time: it used to end in a traceback
        cursor_of(["2026-03-01T09:30:15+00:00", 1]),
        cursor_of({"after": "task_1"}),
        "not-base64!",
    ],
)
async def test_a_cursor_this_server_did_not_write_is_a_clear_tool_error(
    settings: Settings, cursor: str
) -> None:
    async with serving(settings) as server, connect(server.url, await server.token("alice")) as alice:
        for n in range(3):
            await manual_task(alice, echo_pipeline(n=n))
        for tool in ("list_tasks", "list_runs"):
            text = await call_error(alice, tool, {"cursor": cursor})
            assert tool_error(text) == "cursor: not a cursor returned by this server"
        first = await call_ok(alice, "list_tasks", {"limit": 2})
        rest = await call_ok(alice, "list_tasks", {"limit": 2, "cursor": first["next_cursor"]})
        assert len(first["tasks"]) == 2 and len(rest["tasks"]) == 1
        await still_answers(server.url, await server.token("bob"))


async def test_subscribing_and_listening_need_runs_read(settings: Settings) -> None:
    async with serving(settings) as server:
        async with connect(server.url, await server.token("alice")) as alice:
            task = await manual_task(alice, echo_pipeline(n=1))
            run = await call_ok(alice, "run_now", {"task_id": task["id"], "wait": True})
            uri = f"orchestrator://runs/{run['id']}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await alice.subscribe_resource(uri)  # the owner, with runs:read
                async with connect(server.url, await server.token("mallory", "catalog:read")) as mallory:
                    for target in (uri, "orchestrator://catalog"):
                        with pytest.raises(MCPError) as refused:
                            await mallory.subscribe_resource(target)
                        assert str(refused.value) == (
                            "this call needs the 'runs:read' scope; principal 'mallory' lacks it"
                        )
                async with connect(server.url, await server.token("bob", "runs:read")) as bob:
                    with pytest.raises(MCPError, match="not found"):  # runs:read, but not bob's run
                        await bob.subscribe_resource(uri)
        modern = "2026-07-28"
        async with connect(
            server.url, await server.token("mallory", "catalog:read,tasks:read"), modern
        ) as mallory:
            with pytest.raises(MCPError, match="needs the 'runs:read' scope"):
                async with mallory.listen(resource_subscriptions=[uri]):
                    pass
        async with connect(server.url, await server.token("alice"), modern) as alice:
            async with alice.listen(resource_subscriptions=[uri]) as stream:
                assert stream is not None


async def prompt_text(client: Client, name: str, arguments: dict[str, str]) -> str:
    prompt = await client.get_prompt(name, arguments)
    return "\n".join(m.content.text for m in prompt.messages if isinstance(m.content, TextContent))


async def test_the_scheduling_prompt_lists_the_catalog_only_with_catalog_read(settings: Settings) -> None:
    request = {"request": "every morning, echo hello"}
    async with serving(settings) as server:
        async with connect(server.url, await server.token("writer", "tasks:read,tasks:write")) as writer:
            text = await prompt_text(writer, "schedule_from_description", request)
            assert "lacks the 'catalog:read' scope" in text and "core.echo" not in text
        async with connect(server.url, await server.token("reader", ALL)) as reader:
            text = await prompt_text(reader, "schedule_from_description", request)
            assert "- core.echo:" in text and "- http.request:" in text

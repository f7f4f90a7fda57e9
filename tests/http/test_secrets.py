"""Secrets over HTTP (SPEC §11): granted per principal, readable only as a plain reference, and
hidden in everything stored, returned, notified or logged. Each test performs an attack seen from
outside with an ordinary token, and the legitimate use beside it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from orchestrator_mcp.config import Settings
from orchestrator_mcp.token_cli import parse_scopes
from tests.conftest import call_error, call_ok
from tests.http.listener import listening
from tests.http.support import ALL, Running, connect, serving

SECRET = "supersecret123"
ODD_SECRET = "s3cr3t/with space&more"  # changed by URL encoding
PLAIN = "tasks:read,tasks:write,runs:read,runs:write"


@pytest.fixture
def secret_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ORCH_SECRET_API_KEY", SECRET)
    monkeypatch.setenv("ORCH_SECRET_ODD", ODD_SECRET)
    # The listener is on loopback: name it, as an operator opens a private host to ordinary principals.
    return settings.model_copy(update={"http_allow": "127.0.0.1"})


def manual_task(pipeline: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"title": "t", "schedule": {"kind": "manual"}, "pipeline": pipeline, **fields}


def forms_of(secret: str) -> list[str]:
    """The secret and what an expression could have made of it."""
    return [secret, secret[::-1], secret.upper(), *[part for part in secret.split("c") if len(part) > 3]]


async def everything_said_about(client: Client, run: dict[str, Any]) -> str:
    """The run as get_run, its log and the diagnose_run prompt show it, as one text."""
    whole = await call_ok(client, "get_run", {"run_id": run["id"]})
    log = await client.read_resource(run["log_uri"])
    prompt = await client.get_prompt("diagnose_run", {"run_id": run["id"]})
    texts = [json.dumps(whole), *(getattr(item, "text", "") for item in log.contents)]
    texts += [getattr(message.content, "text", "") for message in prompt.messages]
    return "\n".join(texts)


async def granted_client(server: Running, extra: str = "") -> str:
    return await server.token("bob", PLAIN + ",secret:API_KEY,secret:ODD" + extra)


async def test_a_secret_reaches_only_a_principal_it_is_granted_to(secret_settings: Settings) -> None:
    async with serving(secret_settings) as server, listening() as listener:
        alice_token = await server.token("alice", PLAIN)
        bob_token = await granted_client(server)
        step = {
            "id": "call",
            "uses": "http.request",
            "with": {
                "url": listener.url + "/hook",
                "headers": {"Authorization": "Bearer ${{ secrets.API_KEY }}"},
            },
        }
        async with connect(server.url, alice_token) as alice, connect(server.url, bob_token) as bob:
            refused = await call_error(alice, "schedule_task", manual_task([step]))
            assert "pipeline[0].with.headers.Authorization" in refused
            assert "secret 'API_KEY' is not granted" in refused and "secret:API_KEY" in refused
            checked = await call_ok(alice, "validate_pipeline", {"pipeline": [step]})
            assert not checked["valid"] and "API_KEY" in checked["errors"][0]["message"]
            assert listener.seen == []

            task = await call_ok(bob, "schedule_task", manual_task([step]))
            run = await call_ok(bob, "run_now", {"task_id": task["id"], "wait": True})
            assert run["status"] == "succeeded", run["error"]
            assert [seen.headers["authorization"] for seen in listener.seen] == [f"Bearer {SECRET}"]
            assert run["steps"][0]["arguments"]["headers"]["Authorization"] == "Bearer ***"
            assert SECRET not in await everything_said_about(bob, run)


@pytest.mark.parametrize(
    ("where", "step"),
    [
        ("pipeline[0].with.body", {"id": "s", "uses": "core.echo", "with": {"body": "${{ secrets }}"}}),
        ("pipeline[0].with.k", {"id": "s", "uses": "core.echo", "with": {"k": "${{ keys(secrets) }}"}}),
        (
            "pipeline[0].with.r",
            {"id": "s", "uses": "core.echo", "with": {"r": "${{ reverse(secrets.API_KEY) }}"}},
        ),
        (
            "pipeline[0].with.u",
            {"id": "s", "uses": "core.echo", "with": {"u": "x${{ upper(secrets.API_KEY) }}"}},
        ),
        (
            "pipeline[0].with.p",
            {"id": "s", "uses": "core.echo", "with": {"p": "${{ split(secrets.API_KEY, 'c') }}"}},
        ),
        ("pipeline[0].if", {"id": "s", "uses": "core.noop", "if": "starts_with(secrets.API_KEY, 'su')"}),
    ],
)
async def test_secrets_cannot_be_listed_reshaped_or_questioned(
    secret_settings: Settings, where: str, step: dict[str, Any]
) -> None:
    async with serving(secret_settings) as server:
        async with connect(server.url, await granted_client(server)) as bob:
            refused = await call_error(bob, "schedule_task", manual_task([step]))
            assert where in refused and "only as a whole ${{ secrets.NAME }}" in refused
            assert SECRET not in refused
            output = await call_error(
                bob,
                "schedule_task",
                manual_task([{"id": "n", "uses": "core.noop"}], output="secrets.API_KEY"),
            )
            assert "output: secrets may be read only" in output


async def test_a_revoked_grant_fails_the_run_naming_the_secret(secret_settings: Settings) -> None:
    async with serving(secret_settings) as server:
        granting = await granted_client(server)
        plain = await server.token("bob", PLAIN)
        step = {"id": "s", "uses": "core.echo", "with": {"k": "${{ secrets.API_KEY }}"}}
        async with connect(server.url, granting) as bob:
            task = await call_ok(bob, "schedule_task", manual_task([step]))
        await server.revoke(granting)
        async with connect(server.url, plain) as bob:
            run = await call_ok(bob, "run_now", {"task_id": task["id"], "wait": True})
        assert run["status"] == "failed"
        assert run["error"]["type"] == "permission_denied"
        assert "'API_KEY'" in run["error"]["message"] and "bob" in run["error"]["message"]
        assert run["steps"] == []  # nothing was called


async def test_a_secret_echoed_back_cannot_be_reshaped_or_quoted_by_an_error(
    secret_settings: Settings,
) -> None:
    pipeline = [
        {"id": "echo", "uses": "core.echo", "with": {"v": "${{ secrets.API_KEY }}"}, "save_as": "e"},
        {
            "id": "launder",
            "uses": "core.echo",
            "with": {
                "r": "${{ reverse(vars.e.v) }}",
                "u": "${{ upper(vars.e.v) }}",
                "s": "${{ split(vars.e.v, 'c') }}",
            },
            "save_as": "l",
        },
        {"id": "quote", "uses": "core.echo", "with": {"n": "${{ abs(vars.e.v) }}"}},
    ]
    async with serving(secret_settings) as server:
        async with connect(server.url, await granted_client(server)) as bob:
            task = await call_ok(bob, "schedule_task", manual_task(pipeline))
            notices: list[str] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                notices.append(message or "")

            result = await bob.call_tool(
                "run_now", {"task_id": task["id"], "wait": True}, progress_callback=on_progress
            )
            run = result.structured_content
            assert run is not None and run["status"] == "failed"
            assert run["error"]["type"] == "template_error" and "***" in run["error"]["message"]
            said = await everything_said_about(bob, run) + "\n".join(notices)
            for form in forms_of(SECRET):
                assert form not in said, form


async def test_a_secret_url_encoded_in_an_error_body_is_hidden(secret_settings: Settings) -> None:
    async with serving(secret_settings) as server, listening() as listener:
        listener.status, listener.echo_query = 500, True
        step = {
            "id": "s",
            "uses": "http.request",
            "with": {"url": listener.url, "params": {"k": "${{ secrets.ODD }}"}},
        }
        async with connect(server.url, await granted_client(server)) as bob:
            task = await call_ok(bob, "schedule_task", manual_task([step]))
            run = await call_ok(bob, "run_now", {"task_id": task["id"], "wait": True})
            assert run["status"] == "failed"
            assert listener.seen and ODD_SECRET not in listener.seen[0].query  # it did go, encoded
            said = await everything_said_about(bob, run)
            assert "HTTP 500" in said and "k=***" in said
            for form in (ODD_SECRET, listener.seen[0].query.removeprefix("k=")):
                assert form not in said


def test_tokens_take_secret_scopes() -> None:
    assert parse_scopes("tasks:write, secret:SLACK_TOKEN,secret:*") == [
        "secret:*",
        "secret:SLACK_TOKEN",
        "tasks:write",
    ]
    for bad in ("secret:", "secret:a-b", "secrets:X"):
        with pytest.raises(ValueError, match="secret:NAME or secret:\\*"):
            parse_scopes(bad)
    assert parse_scopes(ALL) == sorted(ALL.split(","))

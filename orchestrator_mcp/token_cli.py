"""`orchestrator-mcp token create|list|revoke`: bearer tokens for HTTP, stored as hashes."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime

from orchestrator_mcp.config import Settings
from orchestrator_mcp.errors import Unavailable
from orchestrator_mcp.principal import ALL_SCOPES
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tokens import LOCAL_PRINCIPAL, TokenStore
from orchestrator_mcp.timefmt import rfc3339

PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
SECRET_SCOPE = re.compile(r"^secret:(\*|[A-Za-z_][A-Za-z0-9_]*)$")


def parse_scopes(text: str) -> list[str]:
    """`"a, b"` -> ["a", "b"]; besides the named scopes, `secret:NAME` and `secret:*` grant secrets.

    Raises:
        ValueError: empty, or a scope that does not exist (the message lists the valid ones).
    """
    scopes = sorted({scope.strip() for scope in text.split(",") if scope.strip()})
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES and not SECRET_SCOPE.match(scope)]
    if not scopes or unknown:
        given = ", ".join(unknown) if unknown else "none"
        raise ValueError(
            f"--scopes: unknown scope(s) {given}; expected some of {', '.join(sorted(ALL_SCOPES))}, "
            "secret:NAME or secret:*"
        )
    return scopes


async def run_token_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        store = await SqlStore.open(settings.database_url)
    except Unavailable as error:
        print(f"orchestrator-mcp: {error.message}", file=sys.stderr)
        return 1
    try:
        tokens = TokenStore(store.database)
        now = datetime.now(UTC)
        if args.action == "create":
            return await create(tokens, args.principal, args.scopes, now)
        if args.action == "list":
            return await list_tokens(tokens)
        return await revoke(tokens, args.token_id, now)
    finally:
        await store.close()


async def create(tokens: TokenStore, principal: str, scopes_text: str, now: datetime) -> int:
    if not PRINCIPAL_NAME.match(principal):
        print(
            "orchestrator-mcp: --principal: expected 1-100 letters, digits, '_', '.', '@' or '-', "
            f"starting with a letter or digit; got {principal!r}",
            file=sys.stderr,
        )
        return 2
    if principal == LOCAL_PRINCIPAL:
        print(
            f"orchestrator-mcp: --principal: '{LOCAL_PRINCIPAL}' is reserved for stdio (it holds every "
            "grant); choose another name",
            file=sys.stderr,
        )
        return 2
    try:
        scopes = parse_scopes(scopes_text)
    except ValueError as error:
        print(f"orchestrator-mcp: {error}", file=sys.stderr)
        return 2
    issued = await tokens.issue(principal, scopes, now)
    print(f"Created token {issued.row.id} for principal '{principal}' with scopes {','.join(scopes)}.")
    print("It is shown only this once (only its hash is stored). Send it as 'Authorization: Bearer <token>':")
    print(issued.secret)
    return 0


async def list_tokens(tokens: TokenStore) -> int:
    rows = await tokens.list_tokens()
    if not rows:
        print("No tokens. Create one with: orchestrator-mcp token create --principal NAME --scopes ...")
        return 0
    print(f"{'ID':<30} {'PRINCIPAL':<20} {'CREATED':<22} {'STATUS':<30} SCOPES")
    for row in rows:
        status = "active" if row.revoked_at is None else f"revoked {rfc3339(row.revoked_at)}"
        created = rfc3339(row.created_at.replace(microsecond=0))
        print(f"{row.id:<30} {row.principal:<20} {created:<22} {status:<30} {','.join(row.scopes)}")
    return 0


async def revoke(tokens: TokenStore, token_id: str, now: datetime) -> int:
    if await tokens.revoke(token_id, now):
        print(f"Revoked token {token_id}.")
        return 0
    print(f"orchestrator-mcp: token '{token_id}' not found (or already revoked)", file=sys.stderr)
    return 1

"""Bearer tokens for HTTP serving: issue, list, revoke, and look up by the secret's hash.

A token is `orch_` + 32 random bytes (URL-safe base64). The secret is shown once, when issued; the
database keeps only its SHA-256, so a leaked database does not leak usable tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orchestrator_mcp.ids import new_id
from orchestrator_mcp.store.engine import IMMEDIATE
from orchestrator_mcp.store.tables import TokenRow

TOKENS: Table = TokenRow.__table__  # type: ignore[attr-defined]
TOKEN_PREFIX = "orch_"


def hash_token(secret: str) -> str:
    """The stored form of a token: hex SHA-256 of its text."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created: the row, and the secret that is never stored."""

    row: TokenRow
    secret: str


class TokenStore:
    """The `tokens` table, on the engine of an opened (migrated) store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as raw:
            conn = await raw.execution_options(**{IMMEDIATE: True})
            async with conn.begin():
                yield conn

    async def issue(self, principal: str, scopes: list[str], now: datetime) -> IssuedToken:
        secret = new_secret()
        row = TokenRow(
            id=new_id("tok"),
            principal=principal,
            scopes=sorted(set(scopes)),
            token_hash=hash_token(secret),
            created_at=now,
        )
        async with self._write() as conn:
            await conn.execute(insert(TOKENS).values(**row.model_dump()))
        return IssuedToken(row, secret)

    async def list_tokens(self) -> list[TokenRow]:
        """Every token, oldest first, revoked ones included (no secrets: there are none to show)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id))
            return [TokenRow(**dict(row._mapping)) for row in rows]

    async def revoke(self, token_id: str, now: datetime) -> bool:
        """Revoke a token; False when no live token has that id."""
        async with self._write() as conn:
            result = await conn.execute(
                update(TOKENS)
                .where(TOKENS.c.id == token_id, TOKENS.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return bool(result.rowcount)

    async def find(self, secret: str) -> TokenRow | None:
        """The live token whose secret this is, or None (unknown or revoked)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(TOKENS).where(
                        TOKENS.c.token_hash == hash_token(secret), TOKENS.c.revoked_at.is_(None)
                    )
                )
            ).first()
        return None if row is None else TokenRow(**dict(row._mapping))

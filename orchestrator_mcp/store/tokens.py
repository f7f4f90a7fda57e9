"""Bearer tokens for HTTP serving: issue, list, revoke, and look up by the secret's hash.

A token is `orch_` + 32 random bytes (URL-safe base64). The secret is shown once, when issued; the
database keeps only its SHA-256, so a leaked database does not leak usable tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, insert, select, update

from orchestrator_mcp.domain.grants import EVERYTHING, Grants
from orchestrator_mcp.ids import new_id
from orchestrator_mcp.store.engine import Database
from orchestrator_mcp.store.tables import TokenRow, from_row

TOKENS: Table = TokenRow.__table__  # type: ignore[attr-defined]
TOKEN_PREFIX = "orch_"
LOCAL_PRINCIPAL = "local"
"""The principal of stdio (and of HTTP without authentication): it holds every grant, so no token
may be issued in its name."""


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
    """The `tokens` table, in the database of an opened (migrated) store."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def issue(self, principal: str, scopes: list[str], now: datetime) -> IssuedToken:
        secret = new_secret()
        row = TokenRow(
            id=new_id("tok"),
            principal=principal,
            scopes=sorted(set(scopes)),
            token_hash=hash_token(secret),
            created_at=now,
        )
        await self.database.write(lambda conn: conn.execute(insert(TOKENS).values(**row.model_dump())))
        return IssuedToken(row, secret)

    async def list_tokens(self) -> list[TokenRow]:
        """Every token, oldest first, revoked ones included (no secrets: there are none to show)."""
        stmt = select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id)
        return await self.database.read(
            lambda conn: [from_row(TokenRow, row._mapping) for row in conn.execute(stmt)]
        )

    async def revoke(self, token_id: str, now: datetime) -> bool:
        """Revoke a token; False when no live token has that id."""
        stmt = (
            update(TOKENS)
            .where(TOKENS.c.id == token_id, TOKENS.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return await self.database.write(lambda conn: bool(conn.execute(stmt).rowcount))

    async def find(self, secret: str) -> TokenRow | None:
        """The live token whose secret this is, or None (unknown or revoked)."""
        stmt = select(TOKENS).where(TOKENS.c.token_hash == hash_token(secret), TOKENS.c.revoked_at.is_(None))

        def work(conn: Connection) -> TokenRow | None:
            row = conn.execute(stmt).first()
            return None if row is None else from_row(TokenRow, row._mapping)

        return await self.database.read(work)

    async def grants_of(self, principal: str) -> Grants:
        """What `principal` is granted now: the union of its live tokens' scopes (`local`: everything)."""
        if principal == LOCAL_PRINCIPAL:
            return EVERYTHING
        stmt = select(TOKENS.c.scopes).where(TOKENS.c.principal == principal, TOKENS.c.revoked_at.is_(None))

        def work(conn: Connection) -> Grants:
            return Grants.from_scopes(scope for (scopes,) in conn.execute(stmt) for scope in scopes)

        return await self.database.read(work)

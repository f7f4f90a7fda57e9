"""Bearer tokens: only hashes are stored; revoked or unknown secrets find nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, inspect, text

from orchestrator_mcp.store.engine import open_database
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tables import SCHEMA_VERSION
from orchestrator_mcp.store.tokens import TokenStore, hash_token
from tests.store.test_migrations import upgraded_from

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def test_a_token_is_found_by_its_secret_until_revoked_and_only_its_hash_is_stored(
    database_url: str,
) -> None:
    store = await SqlStore.open(database_url)
    try:
        tokens = TokenStore(store.database)
        issued = await tokens.issue("alice", ["runs:read", "tasks:read", "runs:read"], NOW)
        other = await tokens.issue("bob", ["admin"], NOW)
        assert issued.secret != other.secret and issued.secret.startswith("orch_")
        found = await tokens.find(issued.secret)
        assert (
            found is not None and found.principal == "alice" and found.scopes == ["runs:read", "tasks:read"]
        )
        assert await tokens.find(issued.secret + "x") is None
        query = text("SELECT token_hash FROM tokens")
        stored = await store.database.read(lambda conn: [row[0] for row in conn.execute(query)])
        assert hash_token(issued.secret) in stored and issued.secret not in stored

        assert await tokens.revoke(issued.row.id, NOW)
        assert not await tokens.revoke(issued.row.id, NOW)
        assert await tokens.find(issued.secret) is None
        listed = await tokens.list_tokens()
        assert [(row.principal, row.revoked_at) for row in listed] == [("alice", NOW), ("bob", None)]
    finally:
        await store.close()


def make_version_2(conn: Connection) -> None:
    conn.execute(text("DROP TABLE tokens"))
    conn.execute(text("UPDATE schema_version SET version = 2"))


async def test_a_version_2_database_gains_the_tokens_table(database_url: str) -> None:
    assert await upgraded_from(database_url, make_version_2) == 2
    database = open_database(database_url)
    tables = set(await database.read(lambda conn: inspect(conn).get_table_names()))
    await database.dispose()
    assert "tokens" in tables and SCHEMA_VERSION >= 3

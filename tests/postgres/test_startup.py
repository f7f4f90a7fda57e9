"""A PostgreSQL that cannot be reached or used is reported in one line naming the database."""

from __future__ import annotations

import pytest

from orchestrator_mcp.errors import Unavailable
from orchestrator_mcp.store.sql import SqlStore
from tests.postgres.server import free_port


async def test_an_unreachable_server_is_a_clear_start_up_error() -> None:
    url = f"postgresql+asyncpg://someone:secret@127.0.0.1:{free_port()}/orchestrator"
    with pytest.raises(Unavailable) as caught:
        await SqlStore.open(url)
    message = str(caught.value)
    assert message.startswith("cannot use the database at postgresql+asyncpg://someone:***@127.0.0.1:")
    assert "ConnectionRefusedError" in message and "secret" not in message


async def test_a_missing_database_is_a_clear_start_up_error(pg_url: str) -> None:
    with pytest.raises(Unavailable, match='database "no_such_database" does not exist'):
        await SqlStore.open(pg_url.rsplit("/", 1)[0] + "/no_such_database")

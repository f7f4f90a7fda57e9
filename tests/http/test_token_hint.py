"""A token made on another database is refused as unknown, and the server's log says why it may be."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from orchestrator_mcp.config import Settings
from orchestrator_mcp.store.sql import SqlStore
from orchestrator_mcp.store.tokens import TokenStore
from tests.http.support import INITIALIZE, MCP_HEADERS, serving


async def test_a_token_from_another_database_gets_401_and_one_hint_a_minute_in_the_log(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = await SqlStore.open(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        issued = await TokenStore(other.database).issue("bob", ["tasks:read"], datetime.now(UTC))
    finally:
        await other.close()
    caplog.set_level(logging.WARNING, logger="orchestrator_mcp.server.auth")
    async with serving(settings) as running, httpx2.AsyncClient() as http:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {issued.secret}"}
        answers = [await http.post(running.url, json=INITIALIZE, headers=headers) for _ in range(3)]
        unlike = await http.post(
            running.url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer x"}
        )
    assert [answer.status_code for answer in answers] == [401, 401, 401]
    assert unlike.status_code == 401
    hints = [
        record.getMessage() for record in caplog.records if record.name == "orchestrator_mcp.server.auth"
    ]
    assert len(hints) == 1, hints
    assert settings.database_url in hints[0]
    assert "token create" in hints[0] and "ORCH_DATABASE_URL" in hints[0]
    assert issued.secret not in hints[0]

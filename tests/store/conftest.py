"""The store contract suite runs on SQLite and on PostgreSQL, each test on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.postgres.server import fresh_database, server_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
        return
    async with fresh_database(server_url()) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For the checks that are about SQLite itself (journal mode, its query planner)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"

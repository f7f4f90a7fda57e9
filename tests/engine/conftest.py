"""What the engine's tests build their runs on: a store, and a catalog of the built-in core tools."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from orchestrator_mcp.catalog import Catalog, ServerConnection
from orchestrator_mcp.store.sql import SqlStore
from tool_catalog import create_core_server


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def catalog() -> AsyncIterator[Catalog]:
    built = Catalog([ServerConnection("core", "builtin", create_core_server())])
    async with anyio.create_task_group() as group:
        await built.start(group)
        yield built
        built.close()

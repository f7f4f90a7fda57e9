from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.postgres.server import Cluster, fresh_database, server_url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty database on the shared test server."""
    async with fresh_database(server_url()) as url:
        yield url


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test's own, started; removed afterwards."""
    own = Cluster.create()
    try:
        own.start()
        yield own
    finally:
        own.remove()

"""Readiness follows the database: 503 while PostgreSQL is stopped, 200 again once it is back."""

from __future__ import annotations

import anyio
import pytest

from orchestrator_mcp.config import Settings
from tests.http.support import serving
from tests.http.test_operations import get
from tests.postgres.server import Cluster

pytestmark = pytest.mark.slow  # stops and starts a PostgreSQL cluster of its own


async def test_ready_is_503_while_the_database_is_down_and_200_when_it_is_back(cluster: Cluster) -> None:
    settings = Settings(database_url=cluster.url, poll_interval_seconds=0.2, heartbeat_seconds=1)
    async with serving(settings, auth=False) as server:
        assert (await get(f"{server.base_url}/health/ready")).status_code == 200
        cluster.stop()
        broken = await get(f"{server.base_url}/health/ready")
        assert broken.status_code == 503
        assert broken.json()["database"]["ok"] is False
        assert (await get(f"{server.base_url}/health/live")).status_code == 200
        assert (await get(f"{server.base_url}/metrics")).status_code == 503
        cluster.start()
        with anyio.fail_after(20):
            while True:
                if (await get(f"{server.base_url}/health/ready")).status_code == 200:
                    break
                await anyio.sleep(0.2)

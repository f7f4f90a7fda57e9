"""Run retention: ended runs older than the retention period are deleted, the newest of each task kept."""

from __future__ import annotations

import logging
from datetime import timedelta

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.engine.settings import EngineSettings
from orchestrator_mcp.store.base import RunQueue

logger = logging.getLogger(__name__)


class Retention:
    """Applies run retention (at start-up, then every `housekeeping_seconds` of the clock)."""

    def __init__(self, store: RunQueue, clock: Clock, settings: EngineSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    async def housekeep(self) -> int:
        """Delete ended runs older than the retention period, keeping the newest of each task.
        Returns how many runs were deleted."""
        cutoff = self.clock.now() - timedelta(days=self.settings.run_retention_days)
        deleted = await self.store.delete_expired_runs(cutoff, self.settings.retention_keep_per_task)
        if deleted:
            logger.info("run retention deleted %d runs queued before %s", deleted, cutoff.isoformat())
        return deleted

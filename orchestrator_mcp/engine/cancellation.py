"""Cancelling runs that execute in this process: at once when asked here, and by watching the store
for cancel requests made elsewhere (another instance, or a fire whose overlap policy cancels)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anyio

from orchestrator_mcp.clock import Clock
from orchestrator_mcp.engine.handle import RunHandle
from orchestrator_mcp.engine.timing import wait_seconds
from orchestrator_mcp.store.base import RunQueue

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.5
"""How often (of the clock's time) the store is read for cancel requests, without a notice."""


class Cancellations:
    """Cuts runs of this process by their handles (the dispatcher's, read live)."""

    def __init__(self, store: RunQueue, clock: Clock, handles: Mapping[str, RunHandle]) -> None:
        self.store = store
        self.clock = clock
        self.handles = handles
        self._check = anyio.Event()

    def cancel_local(self, run_id: str, reason: str) -> bool:
        """Cancel a run executing in this process; False if it is not here."""
        handle = self.handles.get(run_id)
        if handle is None:
            return False
        handle.cancel(reason)
        return True

    def check_soon(self) -> None:
        """Read the cancel requests now, not at the next poll (a notice or a fire asked for one)."""
        self._check.set()

    async def watch(self) -> None:
        """Check for cancel requests every `CANCEL_POLL_SECONDS`, or at once on `check_soon()`."""
        while True:
            await wait_seconds(self.clock, self._check, CANCEL_POLL_SECONDS)
            self._check = anyio.Event()
            try:
                await self.check()
            except Exception as error:
                logger.warning("cannot read cancel requests (%s); retrying", error)

    async def check(self) -> None:
        """Cancel the runs of this process whose cancellation was requested in the store."""
        if not self.handles:
            return
        for run_id in await self.store.cancel_requested(list(self.handles)):
            self.cancel_local(run_id, "cancelled by request")

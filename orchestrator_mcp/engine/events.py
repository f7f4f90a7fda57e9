"""In-process notices about runs as they progress, for progress notifications and subscriptions."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something happened to a run: a step ended, or the run did (`final`)."""

    run_id: str
    owner: str
    message: str
    steps_done: int
    steps_total: int
    final: bool = False


Listener = Callable[[RunEvent], Awaitable[None]]


class RunEvents:
    """Listeners by run id (or for every run); a failing listener never disturbs the run."""

    def __init__(self) -> None:
        self._by_run: defaultdict[str, list[Listener]] = defaultdict(list)
        self._all: list[Listener] = []

    def listen(self, run_id: str | None, listener: Listener) -> Callable[[], None]:
        """Register `listener`; returns the function that removes it."""
        bucket = self._all if run_id is None else self._by_run[run_id]
        bucket.append(listener)

        def remove() -> None:
            if listener in bucket:
                bucket.remove(listener)
            if run_id is not None and not bucket:
                self._by_run.pop(run_id, None)

        return remove

    async def publish(self, event: RunEvent) -> None:
        for listener in [*self._by_run.get(event.run_id, ()), *self._all]:
            try:
                await listener(event)
            except Exception:  # a listener's failure is its own
                logger.exception("run event listener failed")

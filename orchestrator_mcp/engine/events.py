"""In-process notices about runs as they progress, for progress notifications and subscriptions.

Publishing never waits: a run must not go at the pace of whoever watches it. A watcher reads its
own bounded stream (`RunEvents.stream`); when it falls behind, the oldest step notices it has not
read are dropped (each carries the run's whole progress so far, so the newest says it all), and a
run's final notice is never dropped. Callbacks (`RunEvents.listen`) are plain functions, called in
line, for watchers that only note that something changed.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio

logger = logging.getLogger(__name__)

STREAM_BUFFER = 16
"""Notices a stream holds for a reader that has not caught up."""


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something happened to a run: a step ended, or the run did (`final`)."""

    run_id: str
    owner: str
    message: str
    steps_done: int
    steps_total: int
    final: bool = False
    progress: float | None = None
    """Within a step: `steps_done` plus how far into the step its tool call says it is."""


Listener = Callable[[RunEvent], None]


class EventStream:
    """One watcher's notices of one run, bounded: a slow reader loses intermediate notices, not the end."""

    def __init__(self, buffer: int = STREAM_BUFFER) -> None:
        self._events: deque[RunEvent] = deque()
        self._buffer = buffer
        self._arrived = anyio.Event()
        self.dropped = 0

    def put(self, event: RunEvent) -> None:
        """Keep `event`; never waits."""
        if len(self._events) >= self._buffer:
            oldest = next((e for e in self._events if not e.final), None)
            if oldest is not None:
                self._events.remove(oldest)
                self.dropped += 1
        self._events.append(event)
        self._arrived.set()

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self._read()

    async def _read(self) -> AsyncIterator[RunEvent]:
        while True:
            while self._events:
                event = self._events.popleft()
                yield event
                if event.final:
                    return
            self._arrived = anyio.Event()
            await self._arrived.wait()


class RunEvents:
    """Watchers by run id (or of every run); a failing callback never disturbs the run."""

    def __init__(self) -> None:
        self._by_run: defaultdict[str, list[Listener]] = defaultdict(list)
        self._all: list[Listener] = []

    def listen(self, run_id: str | None, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each notice (of `run_id`, or of every run); returns the function that
        stops it. The listener runs on the run's path: it must only note the event and return."""
        bucket = self._all if run_id is None else self._by_run[run_id]
        bucket.append(listener)

        def remove() -> None:
            if listener in bucket:
                bucket.remove(listener)
            if run_id is not None and not bucket:
                self._by_run.pop(run_id, None)

        return remove

    @contextmanager
    def stream(self, run_id: str, buffer: int = STREAM_BUFFER) -> Iterator[EventStream]:
        """The notices of `run_id` from now on, to read with `async for` (it ends after the final one)."""
        events = EventStream(buffer)
        remove = self.listen(run_id, events.put)
        try:
            yield events
        finally:
            remove()

    def publish(self, event: RunEvent) -> None:
        """Tell every watcher of the event's run; returns at once."""
        for listener in [*self._by_run.get(event.run_id, ()), *self._all]:
            try:
                listener(event)
            except Exception:  # a listener's failure is its own
                logger.exception("run event listener failed")

"""What the engine loop last read of the store: the next due fire time and the next ready run.

A reading saves the loop a query per round (it goes round after every run that ends): it is trusted
until the store is said to have changed (`forget`) or until a poll interval has passed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(slots=True)
class Reading:
    """A time read from the store (the next due fire time, the next ready run), trusted until the
    store is said to have changed (`forget`) or until `fresh_until`, when polling reads it again."""

    value: datetime | None = None
    fresh_until: datetime | None = None

    def holds(self, now: datetime) -> bool:
        """True if the reading is trusted and says nothing is due or ready at `now`."""
        fresh = self.fresh_until is not None and now < self.fresh_until
        return fresh and (self.value is None or self.value > now)

    def forget(self) -> None:
        self.fresh_until = None

    async def take(
        self, now: datetime, trust_seconds: float, read: Callable[[], Awaitable[datetime | None]]
    ) -> datetime | None:
        """Read anew. Trust starts before the read, so a `forget()` during it is not lost."""
        self.fresh_until = now + timedelta(seconds=trust_seconds)
        self.value = await read()
        return self.value


@dataclass(slots=True)
class Readings:
    """The loop's two readings; a run ending in this process changes neither."""

    due: Reading = field(default_factory=Reading)
    """The next due fire time of any task."""
    ready: Reading = field(default_factory=Reading)
    """When the next queued run may start."""

    def forget(self, *, due_times: bool = True) -> None:
        """The store changed: read the queue again, and the due times too unless `due_times=False`."""
        if due_times:
            self.due.forget()
        self.ready.forget()

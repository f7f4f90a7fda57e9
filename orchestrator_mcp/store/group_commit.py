"""Group commit: writes submitted while one is in flight go together in the next transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

ItemT = TypeVar("ItemT")


class GroupCommit(Generic[ItemT]):
    """Writes submitted while a write is in flight go together in the next one.

    Each `submit` returns once its item is committed (or raises what the commit raised). A
    submitter that finds no write in flight lets the others ready at that moment add theirs, then
    writes everything pending; the others wait for the end of that write, all woken at once (so
    the runs a commit ends free their slots together, and the engine claims for all of them).
    Under load, N concurrent runs cost one transaction instead of N.
    """

    def __init__(self, write: Callable[[Sequence[ItemT]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[_Ticket[ItemT]] = []
        self._writing: anyio.Event | None = None
        """Set when the write in flight ends: all its submitters wake at once."""

    async def submit(self, item: ItemT) -> None:
        ticket = _Ticket(item)
        self._pending.append(ticket)
        while not ticket.done:
            if self._writing is not None:
                await self._writing.wait()
                continue
            self._writing = written = anyio.Event()
            batch: list[_Ticket[ItemT]] = []
            try:
                await anyio.lowlevel.cancel_shielded_checkpoint()  # the others ready now join this batch
                batch, self._pending = self._pending, []
                await self._commit(batch)
            finally:
                # A write cut short (its submitter cancelled) leaves its items to the next writer.
                self._pending[:0] = [entry for entry in batch if not entry.done]
                self._writing = None
                written.set()
        if ticket.error is not None:
            raise ticket.error

    async def _commit(self, batch: list[_Ticket[ItemT]]) -> None:
        try:
            await self._write([entry.item for entry in batch])
        except Exception as failure:
            if len(batch) == 1:
                batch[0].error = failure
            else:  # one bad item must not fail the others: write them one by one
                for entry in batch:
                    await self._commit([entry])
        for entry in batch:
            entry.done = True


@dataclass(slots=True)
class _Ticket(Generic[ItemT]):
    item: ItemT
    done: bool = False
    error: Exception | None = None

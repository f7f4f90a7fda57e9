"""Fair shares of run slots, as the store reads them: which principals have runs queued, how many
each has running, and which of their ready runs take the free slots (domain.queueing.share_slots).

Running counts are read from the runs table, so they count every instance's runs. On SQLite a claim
holds the write lock: what it reads is exact, and so is the share. On PostgreSQL instances claim at
once, each reading what the others have committed: claims in flight together rank the runs alike,
and each takes the first of the ranking the others do not hold (store.sql.dialect.lock_in_turn), so
together they follow one ranking. What is approximate: a claim does not see the runs another has
started but not yet committed, so when they rank from different counts (one committed between their
reads), a principal may get one slot more than its turn until the next claim evens it out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection

from orchestrator_mcp.domain.queueing import Waiting, share_slots
from orchestrator_mcp.store.sql.statements import QUEUED_AT, RUNNING_BY_OWNER, WAITING_OWNERS


def waiting_owners(conn: Connection) -> list[str]:
    """The principals with queued runs (ready or not), by name."""
    return [owner for (owner,) in WAITING_OWNERS.all(conn, {})]


def running_by_owner(conn: Connection) -> dict[str, int]:
    """How many runs each principal has running, on every instance."""
    return {owner: int(count) for owner, count in RUNNING_BY_OWNER.all(conn, {})}


def fair_picks(
    conn: Connection, ready: Mapping[str, Sequence[str]], free: int, queued_at: Callable[[str], datetime]
) -> list[str]:
    """Which of the ready runs take `free` slots, in the order the slots are given.

    `ready`: by principal, the ids of its ready runs, best first; `queued_at` gives when a run was
    queued (read for each principal's best run only). A principal alone takes its best runs without
    a read of the running counts: they cannot change its turn.
    """
    waiting = {owner: runs for owner, runs in ready.items() if runs}
    if len(waiting) == 1:
        [runs] = waiting.values()
        return list(runs[:free])
    counts = running_by_owner(conn)
    return share_slots(
        [Waiting(owner, runs, counts.get(owner, 0), queued_at(runs[0])) for owner, runs in waiting.items()],
        free,
    )


def queued_at(conn: Connection) -> Callable[[str], datetime]:
    """When a stored run was queued, read by id (for `fair_picks`)."""

    def read(run_id: str) -> datetime:
        found = QUEUED_AT.first(conn, {"id": run_id})
        assert found is not None, run_id  # a candidate of this transaction
        moment: datetime = found[0]
        return moment

    return read

"""Which ready queued runs take the free run slots: fair shares across principals, and within a
principal the run start order.

`RUN_START_ORDER` is used three ways by the store: the claim's `ORDER BY` of one principal's
ready runs, the index it reads (ix_runs_ready, by status, owner, then this order, so a claim reads
a principal's first ready runs instead of sorting the queue), and the sort of the runs a fire starts
itself (they must be the ones a claim right after it would pick).

`share_slots` gives the slots out one at a time, each to the principal with the fewest runs running,
so one principal's burst cannot hold every slot while another's runs wait, and a principal alone
may use them all.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

RUN_START_ORDER: tuple[tuple[str, bool], ...] = (
    ("priority", True),
    ("scheduled_for", False),
    ("id", False),
)
"""(run column, descending) pairs, most significant first: the highest priority first, then the
earliest fire time, then the id (ties broken the same way by every instance)."""

RowT = TypeVar("RowT", bound=Mapping[str, Any])


def sort_in_start_order(runs: list[RowT]) -> None:
    """Sort run rows (column values by name) in place into `RUN_START_ORDER`, best first.

    One stable sort per column, least significant first (as fast as one sort on a tuple key, and
    a descending column needs no negatable values).
    """
    for name, descending in reversed(RUN_START_ORDER):
        runs.sort(key=itemgetter(name), reverse=descending)


@dataclass(frozen=True, slots=True)
class Waiting:
    """One principal's ready runs, competing for free slots."""

    owner: str
    runs: Sequence[str]
    """Ids of its ready runs, best first (`RUN_START_ORDER`)."""
    running: int
    """How many of its runs are running now, on every instance."""
    since: datetime
    """When its best ready run (the one it would start) was queued: how long its turn has waited."""


def share_slots(waiting: Iterable[Waiting], free: int) -> list[str]:
    """The runs to start in `free` slots, in the order the slots are given.

    Each slot goes to the principal with the fewest runs running (counting the slots given so far),
    ties to the one whose next run has waited longest (first come, first served: with runs too short
    to be running at the next claim, counts tie and this alternates them), then by name; it takes that
    principal's best run. So slots go round robin across principals with runs waiting, and a
    principal alone takes them all.
    """
    # (running, since, owner) orders the turns; owners are unique, so the rest is never compared.
    turns = [(each.running, each.since, each.owner, 0, each) for each in waiting if each.runs]
    heapq.heapify(turns)
    picked: list[str] = []
    while turns and len(picked) < free:
        running, since, owner, index, principal = heapq.heappop(turns)
        picked.append(principal.runs[index])
        if index + 1 < len(principal.runs):
            heapq.heappush(turns, (running + 1, since, owner, index + 1, principal))
    return picked

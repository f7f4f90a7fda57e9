"""The order in which ready queued runs start when they compete for free slots.

One definition, used three ways by the store: the claim's `ORDER BY`, the index it reads
(ix_runs_ready, so a claim reads the first ready runs instead of sorting the queue), and the
sort of the runs a fire starts itself (they must be the ones a claim right after it would pick).
"""

from __future__ import annotations

from collections.abc import Mapping
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

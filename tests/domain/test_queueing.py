"""The start order of ready runs, and the share of free slots each principal gets (pure, instant)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator_mcp.domain.queueing import RUN_START_ORDER, Waiting, share_slots, sort_in_start_order

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_runs_start_by_priority_high_first_then_fire_time_then_id() -> None:
    runs: list[dict[str, Any]] = [
        {"id": "c", "priority": 3, "scheduled_for": T0},
        {"id": "b", "priority": 3, "scheduled_for": T0},
        {"id": "a", "priority": 3, "scheduled_for": T0 + timedelta(seconds=1)},
        {"id": "z", "priority": 5, "scheduled_for": T0 + timedelta(hours=1)},
        {"id": "y", "priority": 1, "scheduled_for": T0 - timedelta(hours=1)},
    ]
    sort_in_start_order(runs)
    assert [run["id"] for run in runs] == ["z", "b", "c", "a", "y"]


def test_the_sort_is_the_order_its_column_list_defines() -> None:
    rng = random.Random(7)
    runs: list[dict[str, Any]] = [
        {
            "id": f"run_{index:03d}",
            "priority": rng.randint(1, 5),
            "scheduled_for": T0 + timedelta(seconds=rng.randint(0, 3)),
        }
        for index in rng.sample(range(300), 300)
    ]
    assert RUN_START_ORDER == (("priority", True), ("scheduled_for", False), ("id", False))
    expected = sorted(runs, key=lambda run: (-run["priority"], run["scheduled_for"], run["id"]))
    sort_in_start_order(runs)
    assert runs == expected


def waiting(owner: str, runs: int, running: int = 0, waited: int = 0) -> Waiting:
    """`owner` with `runs` ready runs (ids `<owner><n>`, best first), queued `waited` seconds before T0."""
    return Waiting(owner, [f"{owner}{n}" for n in range(runs)], running, T0 - timedelta(seconds=waited))


def test_slots_go_round_robin_across_principals_with_runs_waiting() -> None:
    picks = share_slots([waiting("a", 10, waited=5), waiting("b", 3, waited=1), waiting("c", 1)], 7)
    assert picks == ["a0", "b0", "c0", "a1", "b1", "a2", "b2"]


def test_a_principal_alone_takes_every_slot_in_its_own_order() -> None:
    assert share_slots([waiting("a", 10, running=6)], 4) == ["a0", "a1", "a2", "a3"]
    assert share_slots([waiting("a", 2)], 4) == ["a0", "a1"]
    assert share_slots([waiting("a", 0), waiting("b", 0)], 4) == []


def test_the_next_slot_goes_to_the_principal_with_the_fewest_runs_running() -> None:
    """A burst that holds every slot does not keep the next freed one from another principal."""
    flood, single = waiting("flood", 40, running=7, waited=60), waiting("single", 1, waited=0)
    assert share_slots([flood, single], 1) == ["single0"]
    # The shares even out first: "b" catches up to "a" before they alternate.
    assert share_slots([waiting("a", 5, running=3), waiting("b", 5, running=1)], 4) == [
        "b0",
        "b1",
        "a0",
        "b2",
    ]


def test_ties_go_to_the_principal_waiting_longest_then_by_name() -> None:
    assert share_slots([waiting("a", 1, waited=1), waiting("b", 1, waited=9)], 1) == ["b0"]
    assert share_slots([waiting("b", 1), waiting("a", 1)], 1) == ["a0"]

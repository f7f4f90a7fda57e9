"""The start order of ready runs (pure, instant)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator_mcp.domain.queueing import RUN_START_ORDER, sort_in_start_order

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
